"""Audience in Chromium against a real `enclave serve`, driven from the keyboard: the
owner builds a segment (preview, then save), saves it as a list and makes a topic; a
reader subscribes by the public form, confirms by the mailed link and manages their
preferences; the owner reads the consent history and checks the suppression list."""

from __future__ import annotations

import pytest

from enclave.testing.live import run_enclave
from tests.identity.test_browser import CHROMIUM_ARGS, emailed_link

PASSWORD = "a very long and unguessable passphrase 77"


def _owner(page, live) -> None:
    page.goto(live.setup_link())
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(live.https_url + "/app/")


@pytest.mark.browser
def test_build_a_segment_and_manage_preferences(tmp_path, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    with run_enclave(tmp_path / "var") as live, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            csp = []
            page.on("console", lambda m: csp.append(m.text)
                    if "Content Security Policy" in m.text else None)
            _owner(page, live)

            # Two people, one in GB.
            for email, country in (("gb@reader.example", "GB"), ("fr@reader.example", "FR")):
                page.goto(live.https_url + "/app/people/new/")
                page.get_by_label("Email").fill(email)
                page.get_by_label("Country").fill(country)
                page.get_by_role("button", name="Save").press("Enter")
                expect(page.get_by_role("heading", level=1)).to_be_visible()

            # The app menu leads to Segments; the builder by keyboard: preview, then save.
            page.get_by_role("navigation", name="App").get_by_role(
                "link", name="Segments").press("Enter")
            page.get_by_role("link", name="New segment").press("Enter")
            page.get_by_label("Name").fill("Readers in GB")
            page.get_by_label("Condition 1 kind").select_option("field")
            page.get_by_label("Condition 1 field").select_option("country")
            page.get_by_label("Condition 1 operator").select_option("equals")
            page.get_by_label("Condition 1 value").fill("gb")
            page.get_by_role("button", name="Preview").press("Enter")
            expect(page.locator("#preview-count")).to_have_text("1")
            expect(page.get_by_text("gb@reader.example")).to_be_visible()
            # The previewed rules come back in the JSON box: saving keeps them.
            page.get_by_role("button", name="Save").press("Enter")
            expect(page.get_by_role("heading", level=1)).to_have_text("Readers in GB")
            expect(page.locator("#segment-count")).to_have_text("1")
            page.screenshot(path=str(artifacts_dir / "segment-detail.png"), full_page=True)
            person_url = page.locator("table a[href^='/app/people/']").first.get_attribute(
                "href")
            # "Save as a list": a static list of the people in it now.
            page.get_by_label("Save the people in it now as a new list, named").fill(
                "GB readers, June")
            page.get_by_role("button", name="Save as a list").press("Enter")
            expect(page.get_by_role("heading", level=1)).to_have_text("GB readers, June")
            expect(page.get_by_text("A static list.")).to_be_visible()
            expect(page.locator("#segment-count")).to_have_text("1")

            # A topic, then its public form in a fresh browser (no session).
            page.goto(live.https_url + "/app/topics/")
            page.get_by_label("Key").fill("news")
            page.get_by_label("Name", exact=True).fill("News")
            page.get_by_label("Consent text").fill("A monthly email about what is new.")
            page.get_by_role("button", name="Create topic").press("Enter")
            form_url = page.get_by_role("link", name="/subscribe/").get_attribute("href")

            reader = browser.new_context(ignore_https_errors=True).new_page()
            reader.goto(live.https_url + form_url)
            reader.get_by_label("Email").fill("gb@reader.example")
            reader.get_by_role("button", name="Subscribe").press("Enter")
            expect(reader.get_by_text("Check your inbox")).to_be_visible()
            reader.goto(emailed_link(live.var_dir / "mail", "/confirm/"))
            reader.get_by_role("button", name="Confirm my subscription").press("Enter")
            expect(reader.get_by_text("your subscription is confirmed")).to_be_visible()

            # The preference centre from the same email: see it, turn the topic off.
            reader.goto(emailed_link(live.var_dir / "mail", "/preferences/"))
            topic = reader.get_by_label("News")
            expect(topic).to_be_checked()
            expect(reader.get_by_text("gb@reader.example")).to_be_visible()
            topic.press("Space")
            reader.get_by_role("button", name="Save my preferences").press("Enter")
            expect(reader.get_by_text("Your preferences are saved.")).to_be_visible()
            expect(reader.get_by_label("News")).not_to_be_checked()
            reader.screenshot(path=str(artifacts_dir / "preference-centre.png"),
                              full_page=True)

            # The owner finds the proof on the reader's page: every change, how and when.
            page.goto(live.https_url + person_url)
            page.get_by_role("link", name="Subscriptions and consent history").press("Enter")
            history = page.locator("#consent-history")
            for method in ("form", "confirmation", "preference_centre"):
                expect(history).to_contain_text(method)
            expect(page.locator("#subscriptions")).to_contain_text("unsubscribed")
            # The suppression list from the menu: check an address by keyboard.
            page.get_by_role("navigation", name="App").get_by_role(
                "link", name="Suppressions").press("Enter")
            page.get_by_label("Email address").fill("gb@reader.example")
            page.get_by_role("button", name="Check").press("Enter")
            expect(page.locator("#suppressions-message")).to_have_text(
                "The address is not suppressed.")
            # A new consent text for the topic starts version 2.
            page.get_by_role("navigation", name="App").get_by_role(
                "link", name="Topics").press("Enter")
            page.get_by_role("link", name="news").press("Enter")
            expect(page.locator("#topic-subscribed")).to_have_text("0")
            page.get_by_label("Consent text").fill("A monthly email, and a yearly survey.")
            page.get_by_role("button", name="Save").press("Enter")
            expect(page.get_by_text("Consent text, version 2")).to_be_visible()
        finally:
            browser.close()
        log = live.log()
    assert csp == []
    assert "/preferences/" not in log.replace("/preferences/[REDACTED", "")
    assert "/confirm/" not in log.replace("/confirm/[REDACTED", "")
