"""The public site and the owner set-up in a real browser (Debian chromium via Playwright).

Chromium cannot be told to trust a CA file without an NSS database (``certutil`` is not
in this image), so the browser trusts the live server this way: Python's ssl first
verifies the served certificate against ``live_enclave.ca_file`` for ``localhost``, then
only that verified certificate's public key is pinned in chromium
(``--ignore-certificate-errors-spki-list``) with ``ignore_https_errors=False``. Any other
certificate is still refused (tested below); test_live_https.py tests the verification.
(Pinning the CA's key instead does not work: chromium matches the pin against the chain
the server sends, which is the leaf only.)
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PUBLIC_PAGES = ["/", "/pricing", "/security"]
STRONG = "correct horse battery staple 42"

# Runs before any page script (injected by the browser, so the page's CSP does not apply).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI}`);
});
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed "
                       "(apt-get install chromium); browser tests need Debian chromium"),
]


def verified_server_pin(live_enclave) -> str:
    """The SPKI pin of the live server's certificate, after verifying it against the CA.

    Returns base64(SHA-256(SubjectPublicKeyInfo)) as chromium expects; raises
    ``ssl.SSLCertVerificationError`` if the certificate does not verify for localhost.
    """
    context = ssl.create_default_context(cafile=str(live_enclave.ca_file))
    with (socket.create_connection(("localhost", live_enclave.https_port), timeout=10) as sock,
          context.wrap_socket(sock, server_hostname="localhost") as tls):
        der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def launch(playwright, *extra_args: str) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args],
    )


@dataclass
class WatchedPage:
    """A page plus everything it logged and requested."""

    page: Page
    origin: str
    console_errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def open(self, path: str):
        return self.page.goto(path if "://" in path else self.origin + path)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations")

    def foreign_requests(self) -> list[str]:
        def origin(url: str) -> str:
            parts = urlsplit(url)
            return f"{parts.scheme}://{parts.netloc}"

        return [url for url in self.requested if origin(url) != self.origin]


@pytest.fixture(scope="module")
def playwright_session() -> Iterator:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_session, live_enclave) -> Iterator[Browser]:
    pin = verified_server_pin(live_enclave)
    browser = launch(playwright_session, f"--ignore-certificate-errors-spki-list={pin}")
    yield browser
    browser.close()


@pytest.fixture
def watched(browser, live_enclave) -> Iterator[WatchedPage]:
    context = browser.new_context(ignore_https_errors=False, viewport={"width": 1280,
                                                                       "height": 800})
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = WatchedPage(page, live_enclave.https_url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.console_errors.append(str(exc)))
    page.on("request", lambda request: watch.requested.append(request.url))
    yield watch
    context.close()


class TestBrowserTrust:
    def test_certificate_outside_the_enclave_ca_is_refused(self, playwright_session,
                                                           live_enclave):
        browser = launch(playwright_session)  # no pin: the local CA is not trusted
        try:
            page = browser.new_page(ignore_https_errors=False)
            with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                page.goto(live_enclave.https_url + "/")
        finally:
            browser.close()


class TestPublicPagesInBrowser:
    @pytest.mark.parametrize("path", PUBLIC_PAGES)
    def test_page_loads_over_https_with_200(self, watched, path):
        response = watched.open(path)
        assert response.status == 200
        assert watched.page.url.startswith("https://")

    @pytest.mark.parametrize("path", PUBLIC_PAGES)
    def test_page_logs_no_console_errors(self, watched, path):
        watched.open(path)
        watched.page.wait_for_load_state("networkidle")
        assert watched.console_errors == []

    @pytest.mark.parametrize("path", PUBLIC_PAGES)
    def test_page_triggers_no_csp_violations(self, watched, path):
        watched.open(path)
        watched.page.wait_for_load_state("networkidle")
        assert watched.csp_violations() == []

    @pytest.mark.parametrize("path", PUBLIC_PAGES)
    def test_page_requests_nothing_from_other_origins(self, watched, path):
        watched.open(path)
        watched.page.wait_for_load_state("networkidle")
        assert watched.requested, "the page made no requests at all"
        assert watched.foreign_requests() == []

    @pytest.mark.parametrize("path", PUBLIC_PAGES)
    def test_page_is_styled_by_the_site_stylesheet(self, watched, path):
        watched.open(path)
        display = watched.page.locator(".site-header").evaluate(
            "(el) => getComputedStyle(el).display")
        assert display == "flex"

    @pytest.mark.parametrize(("path", "name"), [
        ("/", "landing"), ("/pricing", "pricing"), ("/security", "security"),
    ])
    def test_full_page_screenshot_is_saved(self, watched, artifacts_dir, path, name):
        watched.open(path)
        target = artifacts_dir / f"{name}.png"
        target.unlink(missing_ok=True)
        watched.page.screenshot(path=str(target), full_page=True)
        assert target.is_file()
        assert target.stat().st_size > 0

    def test_security_page_shows_the_controls_table(self, watched):
        watched.open("/security")
        table = watched.page.get_by_role("table", name="Security controls and their latest "
                                         "results")
        expect(table).to_be_visible()
        expect(table.get_by_role("row")).not_to_have_count(1)  # more than the header row


class TestContentSecurityPolicyInBrowser:
    def test_injected_inline_script_is_blocked_and_reported(self, watched):
        watched.open("/")
        ran = watched.page.evaluate("""() => {
          window.__injected = false;
          const s = document.createElement("script");
          s.textContent = "window.__injected = true";
          document.body.appendChild(s);
          return window.__injected;
        }""")
        assert ran is False
        watched.page.wait_for_function("window.__cspViolations.length > 0")
        assert any(v.startswith("script-src") for v in watched.csp_violations())


class TestKeyboardInBrowser:
    def test_first_tab_reveals_the_skip_link(self, watched):
        watched.open("/")
        watched.page.keyboard.press("Tab")
        skip = watched.page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["y"] >= 0

    def test_focused_link_has_a_visible_outline(self, watched):
        watched.open("/")
        watched.page.keyboard.press("Tab")
        watched.page.keyboard.press("Tab")
        outline = watched.page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.textContent, s.outlineStyle, s.outlineWidth]; }")
        assert outline[0] == "Enclave"
        assert outline[1] != "none"
        assert outline[2] != "0px"


class TestOwnerSetupInBrowser:
    def test_setup_link_creates_the_owner_and_lands_on_welcome(self, watched, live_enclave):
        link = live_enclave.setup_link()
        assert link, f"enclave serve printed no set-up link:\n{live_enclave.log()}"
        page = watched.page
        watched.open(link)
        expect(page.get_by_role("heading", level=1)).to_have_text("Create the owner account")
        page.get_by_label("Email").fill("owner@example.com")
        page.get_by_label("Password").fill(STRONG)
        page.get_by_role("button", name="Create owner").click()
        expect(page).to_have_url(f"{live_enclave.https_url}/app/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Enclave")
        assert watched.console_errors == []
        assert watched.csp_violations() == []
