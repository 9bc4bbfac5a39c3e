"""The OpenAPI document at /api/v1/openapi.json and the docs page at /api/docs."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import get_resolver
from openapi_spec_validator import validate

from enclave.access import endpoints
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

    @pytest.mark.parametrize("endpoint", [e for e in endpoints.of_surface(endpoints.API)
                                          if e.name != "api-openapi"],
                             ids=lambda e: f"{e.method}:{e.name}")
    def test_every_registry_endpoint_is_documented(self, schema, endpoint):
        path = _documented_path(endpoint)
        assert endpoint.method.lower() in schema["paths"].get(path, {}), path

    @pytest.mark.parametrize("endpoint", [e for e in endpoints.of_surface(endpoints.API)
                                          if e.scope is not None],
                             ids=lambda e: f"{e.method}:{e.name}")
    def test_every_keyed_endpoint_documents_its_key_and_its_refusals(self, schema, endpoint):
        operation = schema["paths"][_documented_path(endpoint)][endpoint.method.lower()]
        assert operation.get("security") in ([{"apiKey": []}], [{"writeKey": []}])
        assert {"401", "403", "422"} <= set(operation["responses"])

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
        assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
        assert assets  # the page is Swagger UI from our own static files
        assert [url for url in assets if not finders.find(url)] == []

    def test_posting_to_the_docs_page_is_a_405_problem(self, client):
        response = client.post("/api/docs")
        assert response.status_code == 405
        assert response["Content-Type"] == CONTENT_TYPE


def _component(schema, path, method) -> dict:
    ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"][
        "schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


class TestPrecision:
    """The document says exactly what the server accepts (docs/api.md, "Contract")."""

    @pytest.mark.parametrize(("path", "method"), [
        ("/api/v1/people", "post"), ("/api/v1/people/{person_id}", "patch"),
        ("/api/v1/people/upsert", "post"), ("/api/v1/fields", "post"),
        ("/api/v1/people/{person_id}/tags", "post")])
    def test_request_bodies_refuse_additional_properties(self, schema, path, method):
        component = _component(schema, path, method)
        bodies = [component] if "properties" in component else component["anyOf"]
        assert all(body["additionalProperties"] is False for body in bodies)

    def test_upsert_names_who_to_match(self, schema):
        component = _component(schema, "/api/v1/people/upsert", "post")
        assert [body["required"] for body in component["anyOf"]] == [["external_id"],
                                                                     ["email"]]

    def test_person_text_excludes_nul(self, schema):
        properties = _component(schema, "/api/v1/people", "post")["properties"]
        assert properties["first_name"]["pattern"] == r"^[^\u0000]*$"

    def test_fields_no_api_key_may_write_are_not_in_the_person_body(self, schema):
        properties = _component(schema, "/api/v1/people", "post")["properties"]
        assert not {"address", "ip"} & set(properties)

    def test_encrypt_at_rest_is_a_strict_boolean(self, schema):
        properties = _component(schema, "/api/v1/fields", "post")["properties"]
        assert properties["encrypt_at_rest"]["type"] == "boolean"

    def test_limit_is_bounded_like_the_server(self, schema):
        limit = next(p for p in schema["paths"]["/api/v1/people"]["get"]["parameters"]
                     if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}

    def test_events_body_is_required(self, schema):
        assert schema["paths"]["/api/v1/events"]["post"]["requestBody"]["required"] is True

    @pytest.mark.parametrize("event", [
        {"type": "identify", "email": None, "external_id": None},
        {"type": "identify"},
        {"type": "track", "event": "x", "email": "a@b.co", "properties": {"k\u0000": 1}},
        {"type": "identify", "external_id": "u-1", "fields": {"0": None}},
        {"type": "identify", "external_id": "u-1", "fields": {"first_name": 5}},
        {"type": "identify", "external_id": "u-1", "fields": {"consent": "maybe"}}],
        ids=["identify-naming-no-one", "identify-without-names", "track-key-with-nul",
             "unknown-field", "number-as-text", "consent-not-a-choice"])
    @pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
    def test_event_the_server_refuses_is_invalid_per_the_document(self, schema, event,
                                                                  batched):
        body = {"batch": [event]} if batched else event
        assert not _events_validator(schema).is_valid(body)

    @pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
    def test_identify_naming_its_person_is_valid_per_the_document(self, schema, batched):
        event = {"type": "identify", "external_id": "u-1", "email": None}
        assert _events_validator(schema).is_valid({"batch": [event]} if batched else event)

    def test_created_person_links_to_the_person_operations(self, schema):
        links = schema["paths"]["/api/v1/people"]["post"]["responses"]["201"]["links"]
        assert links["people_get"]["parameters"] == {"person_id": "$response.body#/id"}

def _events_validator(schema):
    """A JSON Schema 2020-12 validator for POST /api/v1/events's body, its references
    resolved against the document's components."""
    from jsonschema import Draft202012Validator

    body = schema["paths"]["/api/v1/events"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return Draft202012Validator({**body, "components": schema["components"]})


@pytest.mark.django_db
class TestAccountDocument:
    """Fetched with a key that may list the fields, the document names the account's
    custom fields the key may set, each with its value type, and no others."""

    @pytest.fixture
    def fields(self, world):
        from enclave.people.actions import do_define_field

        owner = world.actor("owner")
        do_define_field(world.account, "score", "Score", "number", pd_class="none",
                        actor=owner)
        do_define_field(world.account, "plan", "Plan", "select", options=["gold", "free"],
                        pd_class="none", actor=owner)
        do_define_field(world.account, "diagnosis", "Diagnosis", "text",
                        pd_class="sensitive", actor=owner)

    def _custom(self, client) -> dict:
        response = client.get("/api/v1/openapi.json")
        assert response.status_code == 200
        return _component(response.json(), "/api/v1/people", "post")["properties"]["custom"]

    def test_key_sees_its_accounts_writable_fields_typed(self, world, fields):
        from tests.api.conftest import key_client

        custom = self._custom(key_client(world))
        assert custom["additionalProperties"] is False
        assert set(custom["properties"]) == {"score", "plan"}  # sensitive: masked for keys
        assert custom["properties"]["plan"]["anyOf"] == [{"enum": ["gold", "free"]},
                                                         {"type": "null"}]
        assert custom["properties"]["score"]["anyOf"][0]["type"] == "number"

    def test_identify_fields_name_every_accounts_field_typed(self, world, fields):
        from tests.api.conftest import key_client

        response = key_client(world).get("/api/v1/openapi.json")
        identify = response.json()["components"]["schemas"]["IdentifyFields"]
        assert identify["additionalProperties"] is False
        assert "patternProperties" not in identify
        custom = {k for k in identify["properties"] if k.startswith("custom.")}
        assert custom == {"custom.score", "custom.plan", "custom.diagnosis"}
        assert identify["properties"]["custom.score"]["anyOf"][0]["type"] == "number"
        assert identify["properties"]["first_name"]["anyOf"][0]["maxLength"] == 100

    def test_document_without_a_key_names_no_accounts_fields(self, world, fields):
        from tests.conftest import HttpsClient

        custom = self._custom(HttpsClient())
        assert "properties" not in custom
        assert custom["propertyNames"]["pattern"] == r"^[a-z][a-z0-9_]{0,39}$"

    def test_key_without_people_read_gets_the_public_document(self, world, fields):
        from tests.api.conftest import key_client

        custom = self._custom(key_client(world, scopes=["events:write"]))
        assert "properties" not in custom

    def test_other_accounts_key_does_not_see_these_fields(self, world, fields):
        from tests.api.conftest import ApiClient
        from tests.apikeys.factories import make_key

        token, _ = make_key(world.other, world.other_owner, scopes=["people:read"])
        custom = self._custom(ApiClient(token))
        assert custom["properties"] == {}

    def test_bad_key_is_401(self, world):
        from tests.api.conftest import ApiClient

        response = ApiClient("enc_test_nonsense").get("/api/v1/openapi.json")
        assert response.status_code == 401
        assert response["Content-Type"] == CONTENT_TYPE


class TestEmailPattern:
    """The documented email pattern matches only addresses the server accepts."""

    @pytest.mark.parametrize("address", ["a@b.co", "o'neil+x@mail.example.org",
                                         "0@0.aa", "x@xn--bcher-kva.example.com"])
    def test_address_the_pattern_matches_is_accepted_by_the_server(self, address):
        from django.core.validators import validate_email

        from enclave.people.actions import EMAIL_PATTERN

        assert re.fullmatch(EMAIL_PATTERN, address)
        validate_email(address)  # raises if the server would refuse it

    @pytest.mark.parametrize("address", ["0@0.a", "a@-b.com", "a..b@c.com", "a@b"])
    def test_address_the_server_refuses_is_outside_the_pattern(self, address):
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        from enclave.people.actions import EMAIL_PATTERN

        assert re.fullmatch(EMAIL_PATTERN, address) is None
        with pytest.raises(ValidationError):
            validate_email(address)


class TestTimeZonePattern:
    """The documented time-zone pattern matches exactly the names the server accepts."""

    def test_every_name_the_server_accepts_matches(self):
        from enclave.people.actions import time_zone_names
        from enclave.people.values import PERSON_FIELD_RULES

        pattern = re.compile(PERSON_FIELD_RULES["time_zone"]["pattern"])
        assert [n for n in ("", *time_zone_names()) if not pattern.match(n)] == []

    @pytest.mark.parametrize("zone", ["Europe/Pariss", "europe/paris", "EST5EDT",
                                      "Etc/GMT+", "Etc/GMTx5", "America/Indiana"])
    def test_a_name_the_server_refuses_does_not_match(self, zone):
        from enclave.people.actions import TIME_ZONE_RULE, clean_time_zone
        from enclave.people.values import PERSON_FIELD_RULES

        assert re.match(PERSON_FIELD_RULES["time_zone"]["pattern"], zone) is None
        with pytest.raises(ValueError, match=re.escape(TIME_ZONE_RULE)):
            clean_time_zone(zone)


class TestVisibleTextPattern:
    """The schema's "a visible character" pattern and the server agree on whitespace
    (``\\s`` differs between Python and JSON-Schema tools; schemathesis seed 2119205673
    sent a consent text of "\\x1f" that the schema allowed and the server refused)."""

    def test_no_whitespace_character_alone_matches(self):
        from enclave.api.serializers import NOT_BLANK

        whitespace = [chr(n) for n in range(0x110000) if chr(n).isspace()]
        assert [c for c in whitespace if re.match(NOT_BLANK, c)] == []

    @pytest.mark.parametrize("text", ["a", " a ", "\u00e9", "x\ny"])
    def test_text_with_a_visible_character_matches(self, text):
        from enclave.api.serializers import NOT_BLANK

        assert re.match(NOT_BLANK, text)
