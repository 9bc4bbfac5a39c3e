"""The OpenAPI document at /api/v1/openapi.json and the docs page at /api/docs."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import get_resolver
from openapi_spec_validator import validate

from enclave.api import endpoints
from enclave.core.problems import CONTENT_TYPE


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from tests.conftest import HttpsClient

    with django_db_blocker.unblock():
        response = HttpsClient().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _documented_path(endpoint) -> str:
    """The OpenAPI path of a registry entry: its route with {name} parameters."""
    from tests.api.test_authorization import _routes

    for route, pattern in _routes(get_resolver().url_patterns):
        if pattern.name == endpoint.name:
            return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    raise AssertionError(f"no route named {endpoint.name}")


class TestOpenApi:
    def test_document_is_valid_openapi_3(self, schema):
        validate(schema)
        assert schema["openapi"].startswith("3.")

    @pytest.mark.parametrize("endpoint", [e for e in endpoints.ENDPOINTS
                                          if e.name != "api-openapi"],
                             ids=lambda e: f"{e.method}:{e.name}")
    def test_every_registry_endpoint_is_documented(self, schema, endpoint):
        path = _documented_path(endpoint)
        assert endpoint.method.lower() in schema["paths"].get(path, {}), path

    def test_keys_are_a_bearer_security_scheme(self, schema):
        assert schema["components"]["securitySchemes"]["apiKey"] == {
            **schema["components"]["securitySchemes"]["apiKey"],
            "type": "http", "scheme": "bearer"}
        assert schema["paths"]["/api/v1/people"]["get"]["security"] == [{"apiKey": []}]

    def test_health_needs_no_key(self, schema):
        assert "security" not in schema["paths"]["/api/v1/health"]["get"]

    @pytest.mark.parametrize("status", ["400", "401", "403", "404", "422", "429", "500"])
    def test_errors_are_documented_as_problem_json(self, schema, status):
        response = schema["paths"]["/api/v1/people"]["post"]["responses"][status]
        assert response["content"][CONTENT_TYPE]["schema"] == {
            "$ref": "#/components/schemas/Problem"}

    def test_writes_document_409_conflict(self, schema):
        assert "409" in schema["paths"]["/api/v1/people"]["post"]["responses"]

    def test_person_request_body_is_documented_with_its_fields(self, schema):
        body = schema["paths"]["/api/v1/people"]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        properties = schema["components"]["schemas"][ref]["properties"]
        assert {"email", "custom", "tags", "consent"} <= set(properties)


def _strip_nonce(csp: str) -> str:
    return re.sub(r" 'nonce-[^']+'", "", csp)


@pytest.mark.django_db
class TestDocsPage:
    def test_docs_page_answers_200_html(self, client):
        response = client.get("/api/docs")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")

    def test_docs_page_keeps_the_sites_csp(self, client):
        docs = client.get("/api/docs")["Content-Security-Policy"]
        landing = client.get("/")["Content-Security-Policy"]
        assert _strip_nonce(docs) == _strip_nonce(landing)
        assert "unsafe-inline" not in docs

    def test_docs_page_loads_only_same_origin_files(self, client):
        html = client.get("/api/docs").text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources
        assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources

    def test_docs_page_has_no_inline_script_or_style(self, client):
        html = client.get("/api/docs").text
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
        assert "<style" not in html
        assert "style=" not in html

    def test_every_asset_of_the_docs_page_exists(self, client):
        html = client.get("/api/docs").text
        for url in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
            assert finders.find(url), url

    def test_posting_to_the_docs_page_is_a_405_problem(self, client):
        response = client.post("/api/docs")
        assert response.status_code == 405
        assert response["Content-Type"] == CONTENT_TYPE
