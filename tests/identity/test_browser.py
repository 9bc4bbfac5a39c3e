"""The whole identity journey in Chromium against a real `enclave serve`:
sign up → enable MFA → log out → log in with TOTP → see and revoke the other session."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from enclave.testing.live import run_enclave

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
EMAIL = "founder@example.org"
PASSWORD = "a very long and unguessable passphrase 77"


def emailed_link(mail_dir, path_prefix: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sorted(mail_dir.glob("*.log"), reverse=True):
            found = re.search(r"(https://\S+" + re.escape(path_prefix) + r"\S+)",
                              message.read_text())
            if found:
                return found[1]
        time.sleep(0.2)
    raise AssertionError(f"no email with {path_prefix} in {mail_dir}")


def log_in(page, url: str) -> None:
    page.goto(url + "/app/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
def test_signup_mfa_login_and_session_revocation(tmp_path, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    with run_enclave(tmp_path / "var") as live, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            main = browser.new_context(ignore_https_errors=True).new_page()
            csp_errors = []
            main.on("console", lambda m: csp_errors.append(m.text)
                    if "Content Security Policy" in m.text else None)

            # Sign up: "check your email", then the emailed link.
            main.goto(live.https_url + "/app/signup/")
            main.get_by_label("Email").fill(EMAIL)
            main.get_by_role("button", name="Send the link").click()
            expect(main.get_by_role("heading", name="Check your email")).to_be_visible()
            main.goto(emailed_link(live.var_dir / "mail", "/app/signup/"))
            main.get_by_label("Account name").fill("Founders Inc")
            main.get_by_label("Choose a password").fill(PASSWORD)
            main.get_by_role("button", name="Create account").click()
            expect(main.get_by_text("Founders Inc")).to_be_visible()

            # Enable MFA with a code computed from the key shown on the page.
            main.goto(live.https_url + "/app/mfa/setup/")
            expect(main.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
            totp = pyotp.TOTP(main.locator("#totp-secret").inner_text())
            main.get_by_label("Authentication code").fill(totp.now())
            main.get_by_role("button", name="Turn on").click()
            expect(main.get_by_role("heading", name="Your recovery codes")).to_be_visible()
            recovery = main.locator("#recovery-codes code").all_inner_texts()
            assert len(recovery) == 10

            # Log out, then log in with password + TOTP (the next step's code: the
            # enrolment code may not be used twice).
            main.goto(live.https_url + "/app/")
            main.get_by_role("button", name="Sign out").click()
            log_in(main, live.https_url)
            expect(main.get_by_role("heading", name="Two-step verification")).to_be_visible()
            main.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
            main.get_by_role("button", name="Verify").click()
            expect(main.get_by_role("heading", name="Welcome to Enclave")).to_be_visible()

            # A second browser signs in (with a recovery code).
            other = browser.new_context(ignore_https_errors=True).new_page()
            log_in(other, live.https_url)
            other.get_by_label("Authentication code").fill(recovery[0])
            other.get_by_role("button", name="Verify").click()
            expect(other.get_by_role("heading", name="Welcome to Enclave")).to_be_visible()

            # The first browser sees both sessions and revokes the other one.
            main.goto(live.https_url + "/app/sessions/")
            rows = main.locator("table tbody tr")
            expect(rows).to_have_count(2)
            main.screenshot(path=str(artifacts_dir / "identity-sessions.png"), full_page=True)
            rows.filter(has_not_text="(this browser)").get_by_role("button").click()
            expect(main.locator("table tbody tr")).to_have_count(1)

            other.goto(live.https_url + "/app/")
            expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
            expect(other.get_by_text("Your session has ended")).to_be_visible()
            assert csp_errors == []
        finally:
            browser.close()
