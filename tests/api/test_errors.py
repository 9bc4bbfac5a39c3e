"""Every API error is RFC 9457 problem+json with a stable type, a clear detail and the
request's trace id — which is also on that request's access-log line."""

from __future__ import annotations

import dataclasses

import pytest

from enclave.logs.pipeline import flush_stores
from enclave.logs.store import default_store
from tests.api.conftest import ApiClient, key_client

PROBLEM_JSON = "application/problem+json"


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"].endswith(f"/problems/{slug}")
    assert body["status"] == status
    assert body["detail"]
    assert body["trace_id"] == response["X-Trace-Id"]
    return body


@pytest.mark.django_db
class TestBadRequest:
    def test_malformed_json_is_400_invalid_body(self, api):
        response = api.post("/api/v1/people", '{"email": ')
        problem(response, 400, "invalid-body")

    def test_nul_character_in_a_body_is_400_not_a_database_error(self, api):
        response = api.post("/api/v1/people", {"company": "a\u0000b"})
        assert "NUL" in problem(response, 400, "invalid-body")["detail"]

    def test_lone_surrogate_in_a_body_is_400(self, api):
        response = api.post("/api/v1/people", '{"company": "\\ud800"}')
        problem(response, 400, "invalid-body")

    def test_unknown_query_parameter_is_400_invalid_query(self, api):
        body = problem(api.get("/api/v1/people?colour=red"), 400, "invalid-query")
        assert "colour" in body["detail"]

    def test_cursor_not_issued_by_the_api_is_400(self, api):
        problem(api.get("/api/v1/people?cursor=not-a-cursor"), 400, "invalid-query")

    @pytest.mark.parametrize("path", ["/api/v1/people", "/api/v1/audit"])
    def test_an_empty_limit_is_400_as_the_schema_says(self, api, path):
        # Found by the contract test (seed 1732): `limit=` was read as "no limit given";
        # the schema says limit is an integer.
        problem(api.get(f"{path}?limit="), 400, "invalid-query")

    @pytest.mark.parametrize("path", ["/api/v1/people", "/api/v1/audit"])
    def test_an_empty_cursor_is_the_first_page_as_the_schema_says(self, api, path):
        # The schema allows cursor="" (seed 1717309983 caught a 400 for it).
        assert api.get(f"{path}?cursor=").status_code == 200

    def test_limit_over_200_is_400(self, api):
        body = problem(api.get("/api/v1/people?limit=201"), 400, "invalid-query")
        assert "200" in body["detail"]

    def test_an_empty_audit_event_is_400_as_the_schema_says(self, api):
        # Found by the contract test (seed 1452987058): `event=` was read as "any event";
        # the schema's enum of event types has no empty value.
        problem(api.get("/api/v1/audit?event="), 400, "invalid-query")

    def test_bad_audit_date_is_400(self, api):
        problem(api.get("/api/v1/audit?since=9999-12-31"), 400, "invalid-query")


@pytest.mark.django_db
class TestAuthentication:
    def test_no_key_is_401_with_www_authenticate(self, world):
        response = ApiClient().get("/api/v1/people")
        problem(response, 401, "key-missing")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_malformed_key_is_401(self, world):
        problem(ApiClient("nonsense").get("/api/v1/people"), 401, "key-malformed")


@pytest.mark.django_db
class TestForbidden:
    def test_key_without_the_scope_is_403_insufficient_scope(self, world):
        client = key_client(world, scopes=["team:read"])
        body = problem(client.get("/api/v1/people"), 403, "insufficient-scope")
        assert body["required_scope"] == "people:read"

    def test_scope_without_the_permission_is_403_forbidden(self, world):
        # people:read fits an analyst ceiling; people:write does not, so an analyst-ceiling
        # key cannot write even when its creator could.
        client = key_client(world, ceiling="analyst", scopes=["people:read"])
        problem(client.get("/api/v1/audit"), 403, "insufficient-scope")
        problem(client.patch(f"/api/v1/people/{world.person.pk}", {"company": "X"}),
                403, "insufficient-scope")

    def test_demoted_creator_makes_the_key_forbidden(self, world):
        from enclave.accounts.models import Membership

        client = key_client(world, scopes=["people:write"])
        Membership.objects.filter(member=world.members["owner"]).update(role="analyst")
        body = problem(client.patch(f"/api/v1/people/{world.person.pk}", {"company": "X"}),
                       403, "forbidden")
        assert "people.write" in body["detail"]


@pytest.mark.django_db
class TestNotFound:
    def test_unknown_route_under_api_is_404_problem(self, api):
        problem(api.get("/api/v1/no-such-resource"), 404, "not-found")

    def test_missing_person_is_404_problem(self, api):
        problem(api.get("/api/v1/people/999999"), 404, "not-found")

    def test_id_beyond_64_bits_is_404_not_a_database_error(self, api):
        problem(api.get("/api/v1/people/99999999999999999999999"), 404, "not-found")


@pytest.mark.django_db
class TestMethodAndMedia:
    def test_unsupported_method_is_405(self, api):
        response = api.put("/api/v1/people", {})
        problem(response, 405, "method-not-allowed")

    def test_options_is_405_and_reveals_no_metadata(self, api):
        problem(api.options("/api/v1/people"), 405, "method-not-allowed")

    def test_form_body_is_415(self, api):
        response = api.post("/api/v1/people", "email=a%40b.example",
                            content_type="application/x-www-form-urlencoded")
        problem(response, 415, "unsupported-media-type")

    def test_html_only_accept_is_406(self, api):
        problem(api.get("/api/v1/people", HTTP_ACCEPT="text/html"), 406, "not-acceptable")


@pytest.mark.django_db
class TestConflictAndValidation:
    def test_duplicate_email_is_409_conflict(self, api, world):
        body = problem(api.post("/api/v1/people", {"email": world.person.email}),
                       409, "conflict")
        assert body["errors"] == {"email": ["Another person has this email address."]}

    def test_duplicate_field_key_is_409(self, api):
        assert api.post("/api/v1/fields", {"key": "tier", "type": "text"}).status_code == 201
        problem(api.post("/api/v1/fields", {"key": "tier", "type": "text"}), 409, "conflict")

    def test_unknown_body_field_is_422_not_ignored(self, api):
        body = problem(api.post("/api/v1/people", {"email": "n@example.com", "emial": "x"}),
                       422, "validation")
        assert body["errors"] == {"emial": ["Unknown field."]}

    def test_invalid_value_is_422_with_field_errors(self, api):
        body = problem(api.post("/api/v1/people", {"email": "not an email"}), 422,
                       "validation")
        assert body["errors"] == {"email": ["Enter a valid email address."]}

    def test_nested_errors_are_flattened_to_dotted_names(self, api):
        body = problem(api.post("/api/v1/people", {"custom": {"tier": {"a": 1}}}), 422,
                       "validation")
        assert list(body["errors"]) == ["custom.tier"]

    def test_non_object_body_is_422(self, api):
        problem(api.post("/api/v1/people", [1, 2]), 422, "validation")

    def test_search_on_a_masked_field_is_422(self, world):
        client = key_client(world, ceiling="analyst")
        body = problem(client.get("/api/v1/people?email=x%40example.com"), 422,
                       "field-not-queryable")
        assert "email" in body["detail"]

    def test_nothing_is_written_when_validation_fails(self, api, world):
        from enclave.people.models import Person

        before = Person.objects.count()
        body = problem(api.post("/api/v1/people", {"email": "ok@example.com",
                                                   "country": "Narnia"}), 422, "validation")
        assert list(body["errors"]) == ["country"]
        assert Person.objects.count() == before


def nested(kind: str, levels: int, inner: str = "1") -> str:
    """``levels`` arrays (``[[[1]]]``) or objects (``{"a":{"a":1}}``) inside each other."""
    if kind == "list":
        return "[" * levels + inner + "]" * levels
    return '{"a":' * levels + inner + "}" * levels


@pytest.mark.django_db
class TestTooDeep:
    """Deeply nested JSON is a 400 problem, never a RecursionError (a 500)."""

    @pytest.mark.parametrize("kind", ["list", "object"])
    def test_pathological_nesting_on_create_is_400_and_stores_nothing(self, api, kind):
        from enclave.people.models import Person

        before = Person.objects.count()
        body = problem(api.post("/api/v1/people", nested(kind, 100_000)), 400, "too-deep")
        assert "at most 32" in body["detail"]
        assert Person.objects.count() == before

    @pytest.mark.parametrize("kind", ["list", "object"])
    def test_pathological_nesting_on_update_is_400_and_changes_nothing(
            self, api, world, kind):
        url = f"/api/v1/people/{world.person.pk}"
        before = api.get(url).json()
        problem(api.patch(url, '{"company": "Changed", "custom": {"tier": '
                          + nested(kind, 100_000) + "}}"), 400, "too-deep")
        assert api.get(url).json() == before

    def test_one_level_over_the_limit_is_400(self, api):
        from enclave.core.jsondepth import MAX_DEPTH

        problem(api.post("/api/v1/people", nested("list", MAX_DEPTH + 1)), 400, "too-deep")

    def test_body_at_the_limit_reaches_validation(self, api):
        from enclave.core.jsondepth import MAX_DEPTH

        # top object, "custom" object, then lists: MAX_DEPTH levels in all.
        body = ('{"email": "deep@example.com", "custom": {"tier": '
                + nested("list", MAX_DEPTH - 2) + "}}")
        errors = problem(api.post("/api/v1/people", body), 422, "validation")["errors"]
        assert list(errors) == ["custom.tier"]

    def test_deeply_nested_cursor_is_400_invalid_query(self, api):
        import base64

        cursor = base64.urlsafe_b64encode(b"[" * 2000).decode().rstrip("=")
        problem(api.get(f"/api/v1/people?cursor={cursor}"), 400, "invalid-query")


@pytest.fixture
def small_body_limit(settings) -> int:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_body_bytes=2048)
    return 2048


@pytest.mark.django_db
class TestTooLargeAndRateLimited:
    def test_oversized_body_is_413(self, api, small_body_limit):
        response = api.post("/api/v1/people", {"company": "x" * 5000})
        problem(response, 413, "payload-too-large")

    def test_over_the_rate_limit_is_429_with_retry_after(self, world, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.key": "2/min"}
        client = key_client(world)
        statuses = [client.get("/api/v1/account").status_code for _ in range(3)]
        response = client.get("/api/v1/account")
        assert statuses[:2] == [200, 200]
        problem(response, 429, "rate-limited")
        assert 1 <= int(response["Retry-After"]) <= 60  # what is left of the minute window


@pytest.mark.django_db
class TestServerError:
    def test_unexpected_failure_is_500_problem_without_details(self, settings, world):
        settings.ROOT_URLCONF = "tests.api.urls"
        response = ApiClient(raise_request_exception=False).get("/api/v1/test-boom")
        body = problem(response, 500, "server-error")
        assert "unexpected failure" not in response.content.decode()
        assert "Traceback" not in response.content.decode()
        assert body["trace_id"]


@pytest.mark.django_db
class TestTraceId:
    def test_problem_trace_id_is_on_the_access_log_line_of_that_request(self, api):
        flush_stores()
        response = api.post("/api/v1/people", {"bogus": 1})
        body = problem(response, 422, "validation")
        flush_stores()
        lines = [r for r in default_store().records()
                 if r.get("kind") == "access" and r.get("trace_id") == body["trace_id"]]
        assert len(lines) == 1
        assert (lines[0]["status"], lines[0]["method"]) == (422, "POST")
        assert lines[0]["path"] == "/api/v1/people"



class TestVanishedRow:
    def test_row_removed_mid_request_is_404_not_500(self):
        from enclave.api.errors import exception_handler
        from enclave.people.models import Person

        response = exception_handler(Person.DoesNotExist(), {"request": None})
        assert response.status_code == 404
        assert response["Content-Type"] == PROBLEM_JSON


@pytest.mark.django_db
class TestOrder:
    def test_missing_key_is_reported_before_a_bad_query(self, world):
        problem(ApiClient().get("/api/v1/people?colour=red"), 401, "key-missing")


class TestStrictTypes:
    """No coercion where the schema names a type (docs/api.md, "Contract")."""

    @pytest.mark.parametrize("value", [0, 1, "true"])
    def test_encrypt_at_rest_that_is_not_a_boolean_is_422(self, api, value):
        body = problem(api.post("/api/v1/fields", {"key": "plan", "type": "text",
                                                   "encrypt_at_rest": value}), 422, "validation")
        assert body["errors"] == {"encrypt_at_rest": ["Send true or false (a JSON boolean)."]}

    def test_number_for_a_text_field_is_422(self, api):
        body = problem(api.post("/api/v1/people", {"first_name": 5}), 422, "validation")
        assert body["errors"] == {"first_name": ["Send a string."]}

    def test_blank_select_option_is_422(self, api):
        body = problem(api.post("/api/v1/fields", {"key": "plan", "type": "select",
                                                   "options": ["gold", " "]}), 422,
                       "validation")
        assert list(body["errors"]) == ["options.1"]


@pytest.mark.django_db
class TestStrictCustomValues:
    """A custom value is its field's JSON type or null — what the account's document
    says (tests/api/test_schema.py, TestAccountDocument)."""

    @pytest.fixture(autouse=True)
    def _fields(self, world):
        from enclave.people.actions import do_define_field

        owner = world.actor("owner")
        for key, kind, options in (("score", "number", []), ("since", "date", []),
                                   ("vip", "boolean", []), ("plan", "select", ["gold"]),
                                   ("nick", "text", [])):
            do_define_field(world.account, key, key.title(), kind, options=options,
                            pd_class="none", actor=owner)

    @pytest.mark.parametrize(("key", "value", "message"), [
        ("score", "42", "Send a JSON number between -1000000000000000 and "
                        "1000000000000000, or null."),
        ("score", 10**16, "Send a JSON number between -1000000000000000 and "
                          "1000000000000000, or null."),
        ("score", "", "Send a JSON number between -1000000000000000 and "
                      "1000000000000000, or null."),
        ("since", "20261205", "Send a date as a YYYY-MM-DD string, or null."),
        ("since", "2026-02-30", "Send a date as a YYYY-MM-DD string, or null."),
        ("vip", "yes", "Send true or false (a JSON boolean), or null."),
        ("vip", 1, "Send true or false (a JSON boolean), or null."),
        ("plan", "silver", "Send one of: gold; or null."),
        ("nick", 5, "Send a string of at most 1000 characters without NUL, or null."),
        ("nick", "x" * 1001, "Send a string of at most 1000 characters without NUL, or null."),
    ])
    def test_custom_value_of_another_type_is_422_and_nothing_is_written(
            self, api, world, key, value, message):
        url = f"/api/v1/people/{world.person.pk}"
        before = api.get(url).json()["custom"]
        body = problem(api.patch(url, {"custom": {key: value}}), 422, "validation")
        assert body["errors"] == {f"custom.{key}": [message]}
        assert api.get(url).json()["custom"] == before

    def test_custom_values_of_their_types_are_stored(self, api, world):
        url = f"/api/v1/people/{world.person.pk}"
        sent = {"score": 2.5, "since": "2026-12-05", "vip": False, "plan": "gold",
                "nick": "Zed"}
        assert api.patch(url, {"custom": sent}).status_code == 200
        assert api.get(url).json()["custom"] == sent

    def test_null_clears_a_custom_value(self, api, world):
        url = f"/api/v1/people/{world.person.pk}"
        api.patch(url, {"custom": {"score": 3}})
        assert api.patch(url, {"custom": {"score": None}}).status_code == 200
        assert api.get(url).json()["custom"]["score"] is None
