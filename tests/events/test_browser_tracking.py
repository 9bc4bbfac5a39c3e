"""Website tracking in Chromium: a page on another origin loads the tracking library from
a running ``enclave serve`` (with its SRI integrity), and its page and track calls arrive
as events of the browser key's account; with consent required, nothing is sent or stored
in the browser before the visitor agrees."""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time

import pytest

from enclave.events import tracker
from enclave.testing.live import free_port
from tests.events.test_spec_clients import rows
from tests.identity.test_browser import CHROMIUM_ARGS
from tests.live_accounts import add_owner_account, enclave


@pytest.fixture(scope="module")
def live(live_with_accounts):
    return live_with_accounts


class Site:
    """A website on its own origin (http://127.0.0.1:<port>) serving one page."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = site.pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    served = Site()
    yield served
    served.close()


def browser_key(live, site: Site, *extra: str) -> tuple[int, str]:
    email = f"site-{secrets.token_hex(4)}@events.example"
    account = add_owner_account(live, email, "website")
    result = enclave(live, "apikeys", "create", "--account", str(account), "--member", email,
                     "--name", "site", "--kind", "browser", "--allowed-origins", site.origin,
                     *extra)
    assert result.returncode == 0, result.stderr
    return account, result.stdout.strip()


def page_html(live, token: str, script: str, *, integrity: str | None = None,
              consent: bool = False) -> bytes:
    load = f'enclave.load({{writeKey: "{token}"{", requireConsent: true" if consent else ""}}});'
    return (f'<!doctype html><html><head><title>Pricing</title></head><body>'
            f'<script src="{live.https_url}{tracker.PATH}" '
            f'integrity="{integrity or tracker.integrity()}" crossorigin="anonymous"></script>'
            f'<script>{load}{script}</script></body></html>').encode()


def stored(live, account: int) -> list[tuple]:
    return rows(live, account, "SELECT type, name, anonymous_id, context FROM events_event "
                               "WHERE account_id = ? ORDER BY id")


def wait_for(live, account: int, count: int, timeout: float = 20.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = stored(live, account)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    return stored(live, account)


def refused_pages(live) -> int:
    """Page calls the server answered 403 (its access log)."""
    return sum('"path": "/api/ingest/v1/page"' in line and '"status": 403' in line
               for line in live.log().splitlines())


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(ignore_https_errors=True)
        finally:
            browser.close()


@pytest.mark.browser
class TestTrackingInChromium:
    def test_page_and_track_calls_from_the_site_arrive_as_events(self, live, site, chromium):
        account, token = browser_key(live, site)
        site.pages["/pricing"] = page_html(
            live, token, 'enclave.page("Pricing"); enclave.track("Clicked buy", {plan: "pro"});')
        tab = chromium.new_page()
        tab.goto(f"{site.origin}/pricing?utm_source=newsletter&utm_campaign=spring"
                 "#access_token=from-a-sign-in-flow")
        found = wait_for(live, account, 2)
        assert [(t, n) for t, n, _, _ in found] == [("page", "Pricing"),
                                                   ("track", "Clicked buy")]
        anonymous = tab.evaluate("enclave.anonymousId()")
        assert {a for _, _, a, _ in found} == {anonymous}
        assert json.loads(found[0][3])["campaign"] == {"source": "newsletter",
                                                        "name": "spring"}
        assert "access_token" not in found[0][3]  # the URL's #fragment stays in the page

    def test_library_changed_on_the_way_is_refused_by_the_browser(self, live, site,
                                                                 chromium):
        account, token = browser_key(live, site)
        wrong = "sha384-" + "A" * 64
        site.pages["/"] = page_html(live, token, 'enclave.page("Home");', integrity=wrong)
        tab = chromium.new_page()
        console = []
        tab.on("console", lambda m: console.append(m.text))
        tab.goto(f"{site.origin}/")
        assert tab.evaluate("typeof window.enclave") == "undefined"
        assert any("integrity" in m for m in console), console
        assert wait_for(live, account, 1, timeout=2) == []

    def test_nothing_is_sent_or_stored_before_consent(self, live, site, chromium):
        account, token = browser_key(live, site, "--require-consent")
        site.pages["/"] = page_html(live, token, 'enclave.page("Home");', consent=True)
        tab = chromium.new_page()
        sent = []
        tab.on("request", lambda r: sent.append(r.url) if "/api/ingest/" in r.url else None)
        tab.goto(f"{site.origin}/")
        tab.wait_for_load_state("networkidle")
        assert sent == []
        assert tab.evaluate("Object.keys(localStorage)") == []
        tab.evaluate("enclave.consent(true)")
        found = wait_for(live, account, 1)
        assert [(t, n) for t, n, _, _ in found] == [("page", "Home")]
        assert tab.evaluate("Object.keys(localStorage).sort()") == [
            "enclave_ajs_anonymous_id"]

    def test_visitor_who_refuses_leaves_nothing_behind(self, live, site, chromium):
        account, token = browser_key(live, site)
        site.pages["/"] = page_html(live, token, "")
        tab = chromium.new_page()
        tab.goto(f"{site.origin}/")
        assert tab.evaluate("Object.keys(localStorage)") == ["enclave_ajs_anonymous_id"]
        sent = []
        tab.on("request", lambda r: sent.append(r.url) if "/api/ingest/" in r.url else None)
        tab.evaluate('enclave.consent(false); enclave.identify("u-1"); enclave.reset(); '
                     'enclave.track("After refusing");')
        tab.wait_for_load_state("networkidle")
        assert tab.evaluate("Object.keys(localStorage)") == []
        assert sent == []
        assert wait_for(live, account, 1, timeout=1) == []

    def test_page_on_another_origin_is_refused(self, live, site, chromium):
        other = Site()
        try:
            account, token = browser_key(live, other)  # the key names another site
            site.pages["/"] = page_html(live, token, 'enclave.page("Home");')
            tab = chromium.new_page()
            sent = []
            tab.on("request", lambda r: sent.append(r.url) if "/api/ingest/" in r.url else None)
            before = refused_pages(live)
            tab.goto(f"{site.origin}/")
            tab.wait_for_load_state("networkidle")
            assert sent == [f"{live.https_url}/api/ingest/v1/page"]
            assert refused_pages(live) == before + 1
            assert wait_for(live, account, 1, timeout=2) == []
        finally:
            other.close()
