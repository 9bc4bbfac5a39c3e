"""What a visitor or API client sees when a request goes wrong, and the headers on everything."""

from __future__ import annotations

import dataclasses
import json
import re
from urllib.parse import urlsplit

import pytest

from enclave.core import headers
from enclave.core.problems import PROBLEMS

PROBLEM_JSON = "application/problem+json"
BODY_LIMIT = 2048


@pytest.fixture
def small_body_limit(settings) -> int:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_body_bytes=BODY_LIMIT)
    return BODY_LIMIT


def problem(response) -> dict:
    assert response["Content-Type"] == PROBLEM_JSON
    return json.loads(response.content)


class TestUnknownHost:
    def test_page_request_for_unknown_host_gets_a_400_page(self, client):
        response = client.get("/", HTTP_HOST="evil.example")
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        assert "This server does not answer for that host name." in response.text

    def test_api_request_for_unknown_host_gets_problem_json(self, client):
        response = client.get("/api/v1/health", HTTP_HOST="evil.example")
        assert response.status_code == 400
        body = problem(response)
        assert body["type"].endswith("/problems/bad-request")
        assert body["detail"] == "This server does not answer for that host name."

    def test_unknown_host_is_not_echoed_back(self, client):
        response = client.get("/", HTTP_HOST="evil.example")
        assert response.status_code == 400
        assert "This server does not answer for that host name." in response.text
        assert "evil.example" not in response.text


class TestNotFound:
    def test_unknown_page_gets_a_friendly_404_page(self, client):
        response = client.get("/no-such-page")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert "Page not found" in response.text
        assert 'href="/"' in response.text

    def test_404_page_shows_no_traceback_or_debug_detail(self, client):
        response = client.get("/no-such-page")
        assert (response.status_code, "Page not found" in response.text) == (404, True)
        text = response.text
        assert "Traceback" not in text
        assert "URLconf" not in text
        assert "enclave.urls" not in text

    def test_404_page_quotes_the_trace_id(self, client):
        response = client.get("/no-such-page")
        assert response["X-Trace-Id"] in response.text

    def test_unknown_api_path_gets_problem_json_404(self, client):
        response = client.get("/api/v1/no-such-thing")
        assert response.status_code == 404
        body = problem(response)
        assert body["status"] == 404
        assert body["title"] == "Not found"
        assert body["instance"] == "/api/v1/no-such-thing"
        assert body["trace_id"] == response["X-Trace-Id"]

    def test_problem_type_uri_leads_to_its_documentation_page(self, client):
        body = problem(client.get("/api/v1/no-such-thing"))
        page = client.get(urlsplit(body["type"]).path)
        assert page.status_code == 200
        assert "Not found" in page.text


class TestOversizeBody:
    def test_oversize_page_post_gets_a_413_page(self, client, small_body_limit):
        response = client.post("/pricing", data=b"x" * (BODY_LIMIT + 1),
                               content_type="application/octet-stream")
        assert response.status_code == 413
        assert response["Content-Type"].startswith("text/html")
        assert f"larger than {BODY_LIMIT} bytes" in response.text

    def test_oversize_api_post_gets_problem_json_413(self, client, small_body_limit):
        response = client.post("/api/v1/health", data=b"{" * (BODY_LIMIT + 1),
                               content_type="application/json")
        assert response.status_code == 413
        body = problem(response)
        assert body["type"].endswith("/problems/payload-too-large")
        assert str(BODY_LIMIT) in body["detail"]

    def test_body_at_the_limit_is_not_refused_as_too_large(self, client, small_body_limit):
        response = client.post("/pricing", data=b"x" * BODY_LIMIT,
                               content_type="application/octet-stream")
        assert response.status_code == 405

    def test_default_limit_refuses_a_body_one_byte_over(self, client, settings):
        limit = settings.CONFIG.max_body_bytes
        response = client.post("/api/v1/health", data=b" " * (limit + 1),
                               content_type="application/json")
        assert response.status_code == 413


class TestProblemPages:
    @pytest.mark.parametrize("slug", sorted(PROBLEMS))
    def test_each_problem_type_has_a_documentation_page(self, client, slug):
        response = client.get(f"/problems/{slug}")
        assert response.status_code == 200
        assert f"<h1 id=\"problem-title\">{PROBLEMS[slug].title}</h1>" in response.text
        assert f"HTTP status {PROBLEMS[slug].status}" in response.text

    def test_unknown_problem_slug_gets_the_404_page(self, client):
        response = client.get("/problems/no-such-problem")
        assert response.status_code == 404
        assert "Page not found" in response.text


@pytest.mark.django_db
class TestSecurityHeaders:
    REQUESTS = {
        "landing": ("get", "/", {}),
        "pricing": ("get", "/pricing", {}),
        "security": ("get", "/security", {}),
        "security.txt": ("get", "/.well-known/security.txt", {}),
        "problem page": ("get", "/problems/not-found", {}),
        "404 page": ("get", "/no-such-page", {}),
        "404 problem": ("get", "/api/v1/no-such-thing", {}),
        "400 unknown host": ("get", "/", {"HTTP_HOST": "evil.example"}),
        "405": ("post", "/pricing", {}),
        "413": ("post", "/pricing", {"data": b"x" * (BODY_LIMIT + 1),
                                     "content_type": "application/octet-stream"}),
    }

    @pytest.mark.parametrize("name", REQUESTS)
    def test_every_required_security_header_is_sent(self, client, small_body_limit, name):
        method, path, kwargs = self.REQUESTS[name]
        response = getattr(client, method)(path, **kwargs)
        missing = [h for h in headers.REQUIRED if h not in response]
        assert missing == []

    @pytest.mark.parametrize("path", ["/", "/pricing", "/security", "/no-such-page"])
    def test_stylesheet_carries_the_nonce_of_the_csp_header(self, client, path):
        response = client.get(path)
        nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])[1]
        assert f'nonce="{nonce}"' in response.text

    def test_csp_nonce_differs_between_requests(self, client):
        first = client.get("/")["Content-Security-Policy"]
        assert client.get("/")["Content-Security-Policy"] != first

    def test_csp_allows_no_other_origin(self, client):
        policy = client.get("/")["Content-Security-Policy"]
        assert "http:" not in policy
        assert "https:" not in policy
        assert "*" not in policy
