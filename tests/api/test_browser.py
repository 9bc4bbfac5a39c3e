"""/api/docs in Chromium against a real `enclave serve`: Swagger UI renders every
operation from our own static files, with no Content-Security-Policy violation."""

from __future__ import annotations

import pytest

from enclave.testing.live import run_enclave
from tests.identity.test_browser import CHROMIUM_ARGS


@pytest.mark.browser
def test_docs_page_renders_the_operations_without_csp_violations(tmp_path, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    with run_enclave(tmp_path / "var") as live, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            console, requests = [], []
            page.on("console", lambda m: console.append(m.text))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(live.https_url + "/api/docs")
            expect(page.get_by_text("Enclave API").first).to_be_visible()
            expect(page.locator(".opblock").first).to_be_visible()
            expect(page.get_by_text("/api/v1/people/{person_id}").first).to_be_visible()
            page.screenshot(path=str(artifacts_dir / "api-docs.png"), full_page=False)
            operations = page.locator(".opblock").count()
        finally:
            browser.close()
    assert operations >= 15
    assert [m for m in console if "Content Security Policy" in m] == []
    assert all(u.startswith(live.https_url) or u.startswith("data:") for u in requests), \
        requests
