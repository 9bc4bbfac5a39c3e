"""POST /api/v1/events over the Django test client (HTTPS, real API keys, real DB)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import override_settings

from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.events.models import Event, MessageId
from enclave.people.models import Person
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key

URL = "/api/v1/events"


def track(i: int = 0, **extra) -> dict:
    return {"type": "track", "event": "Page viewed", "properties": {"n": i}, **extra}


def batch(*events) -> dict:
    return {"batch": list(events)}


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.mark.django_db
class TestAccepted:
    def test_batch_is_stored_and_acknowledged_with_202(self, ingest, world):
        response = ingest.post(URL, batch(*(track(i) for i in range(5))))
        assert response.status_code == 202
        assert response.json() == {"received": 5, "stored": 5, "duplicates": []}
        stored = Event.objects.filter(account=world.account).order_by("id")
        assert [e.properties["n"] for e in stored] == [0, 1, 2, 3, 4]

    def test_batch_of_1000_events_with_message_ids_is_stored(self, ingest):
        response = ingest.post(URL, batch(*(track(i, message_id=f"m{i}") for i in range(1000))))
        assert response.json() == {"received": 1000, "stored": 1000, "duplicates": []}
        assert MessageId.objects.count() == 1000

    def test_single_event_is_stored(self, ingest, world):
        response = ingest.post(URL, track(7, timestamp="2026-01-02T03:04:05Z"))
        assert response.status_code == 202
        event = Event.objects.get(account=world.account)
        assert (event.type, event.name, event.properties) == ("track", "Page viewed", {"n": 7})
        assert event.occurred_at == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    def test_event_records_the_sending_key(self, world):
        token, key = make_key(world.account, world.members["owner"], scopes=["events:write"])
        assert ApiClient(token).post(URL, track()).status_code == 202
        assert Event.objects.get().key_public_id == key.public_id

    def test_one_audit_row_per_batch_without_personal_values(self, ingest, world):
        ingest.post(URL, batch(track(1), {"type": "identify", "email": "ada@example.com",
                                          "fields": {"first_name": "Ada"}}))
        rows = AuditEvent.objects.filter(event_type=AuditEventType.EVENTS_INGESTED)
        assert rows.count() == 1
        extra = rows.get().extra_data
        assert extra["stored"] == 2
        person = Person.objects.get(account=world.account, email="ada@example.com")
        assert (extra["people_created"], extra["people_updated"]) == ([person.pk], [])
        assert "ada" not in json.dumps(extra).lower()


@pytest.mark.django_db
class TestIdempotency:
    def test_repeat_within_24_hours_is_acknowledged_but_not_stored(self, ingest):
        first = ingest.post(URL, batch(track(1, message_id="m-1"), track(2, message_id="m-2")))
        again = ingest.post(URL, batch(track(1, message_id="m-1"), track(3, message_id="m-3")))
        assert first.status_code == again.status_code == 202
        assert again.json() == {"received": 2, "stored": 1, "duplicates": [0]}
        assert sorted(Event.objects.values_list("message_id", flat=True)) == [
            "m-1", "m-2", "m-3"]

    def test_repeat_after_24_hours_is_stored_again(self, ingest):
        ingest.post(URL, track(1, message_id="m-1"))
        with clock.travel(dt.timedelta(hours=24, minutes=1)):
            response = ingest.post(URL, track(1, message_id="m-1"))
        assert response.json()["stored"] == 1
        assert Event.objects.filter(message_id="m-1").count() == 2

    def test_same_message_id_twice_in_one_batch_is_stored_once(self, ingest):
        response = ingest.post(URL, batch(track(1, message_id="m"), track(2, message_id="m")))
        assert response.json() == {"received": 2, "stored": 1, "duplicates": [1]}

    def test_message_ids_are_per_account(self, ingest, world):
        token, _ = make_key(world.other, world.other_owner, scopes=["events:write"])
        assert ingest.post(URL, track(1, message_id="shared")).json()["stored"] == 1
        response = ApiClient(token).post(URL, track(1, message_id="shared"))
        assert response.json()["stored"] == 1
        assert sorted(Event.objects.filter(message_id="shared")
                      .values_list("account_id", flat=True)) == sorted(
            [world.account.pk, world.other.pk])


@pytest.mark.django_db
class TestBadInput:
    def test_malformed_json_is_400_and_stores_nothing(self, ingest):
        response = ingest.post(URL, b'{"type": "track", "event": ')
        assert response.status_code == 400
        assert problem(response)["type"].endswith("/problems/invalid-body")
        assert not Event.objects.exists()

    def test_wrong_content_type_is_415(self, ingest):
        response = ingest.post(URL, json.dumps(track()), content_type="text/plain")
        assert response.status_code == 415
        assert problem(response)["type"].endswith("/problems/unsupported-media-type")

    def test_body_over_1_mb_is_413(self, ingest):
        big = batch(*(track(i, properties={"pad": "x" * 2000}) for i in range(600)))
        response = ingest.post(URL, big)
        assert response.status_code == 413
        assert problem(response)["type"].endswith("/problems/payload-too-large")
        assert not Event.objects.exists()

    def test_batch_over_1000_events_is_422(self, ingest):
        response = ingest.post(URL, batch(*({"type": "track", "event": "e"}
                                            for _ in range(1001))))
        assert response.status_code == 422
        assert "At most 1000" in problem(response)["errors"]["batch"][0]
        assert not Event.objects.exists()

    def test_one_invalid_event_rejects_the_whole_batch(self, ingest):
        response = ingest.post(URL, batch(track(0, message_id="a"), track(1, bogus=True),
                                          {"type": "identify", "email": "not-an-email"}))
        assert response.status_code == 422
        errors = problem(response)["errors"]
        assert set(errors) == {"batch.1.bogus", "batch.2.email"}
        assert not Event.objects.exists()
        assert not MessageId.objects.exists()

    def test_wrong_type_is_reported_at_its_field(self, ingest):
        response = ingest.post(URL, {"type": "track", "event": 42})
        assert problem(response)["errors"] == {"event": ["Expected `str`, got `int`"]}

    def test_missing_event_type_is_422(self, ingest):
        response = ingest.post(URL, {"event": "x"})
        assert response.status_code == 422
        assert "type" in problem(response)["errors"]

    def test_unknown_event_type_is_422(self, ingest):
        response = ingest.post(URL, {"type": "page", "event": "x"})
        assert list(problem(response)["errors"]) == ["type"]

    def test_timestamp_before_year_1_in_utc_is_stored_as_received(self, ingest):
        now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
        with clock.frozen(now):
            response = ingest.post(URL, track(timestamp="0001-01-01T00:00:00+14:00"))
        assert response.status_code == 202
        assert Event.objects.get().occurred_at == now

    def test_json_array_body_is_400(self, ingest):
        response = ingest.post(URL, [track()])
        assert response.status_code == 400

    def test_nul_character_is_422_not_a_server_error(self, ingest):
        response = ingest.post(URL, b'{"type": "track", "event": "a\\u0000b"}')
        assert response.status_code == 422
        assert not Event.objects.exists()


def nested(kind: str, levels: int) -> str:
    if kind == "list":
        return "[" * levels + "]" * levels
    return '{"a":' * levels + "1" + "}" * levels


def deep_properties(levels: int) -> dict:
    """A properties object nesting ``levels`` levels deep, itself included."""
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


@pytest.mark.django_db
class TestTooDeep:
    """Deeply nested bodies are a 400 problem (never a 500), and nothing deeper than the
    stored-value limit is stored."""

    @pytest.mark.parametrize("kind", ["list", "object"])
    def test_pathological_nesting_is_400_too_deep_and_stores_nothing(self, ingest, kind):
        response = ingest.post(URL, nested(kind, 100_000))
        assert response.status_code == 400
        body = problem(response)
        assert body["type"].endswith("/problems/too-deep")
        assert body["trace_id"] == response["X-Trace-Id"]
        assert not Event.objects.exists()

    def test_pathological_properties_in_a_batch_are_400(self, ingest):
        event = '{"type": "track", "event": "x", "properties": {"a": ' + \
            nested("list", 100_000) + "}}"
        response = ingest.post(URL, '{"batch": [' + event + "]}")
        assert problem(response)["type"].endswith("/problems/too-deep")
        assert not Event.objects.exists()

    def test_properties_at_the_stored_limit_are_stored_as_sent(self, ingest):
        from enclave.core.jsondepth import MAX_STORED_DEPTH

        properties = deep_properties(MAX_STORED_DEPTH)
        response = ingest.post(URL, batch(track(properties=properties)))
        assert response.status_code == 202
        assert Event.objects.get().properties == properties

    def test_properties_one_level_deeper_are_422_and_not_stored(self, ingest):
        from enclave.core.jsondepth import MAX_STORED_DEPTH

        response = ingest.post(URL, batch(track(properties=deep_properties(
            MAX_STORED_DEPTH + 1))))
        assert response.status_code == 422
        assert list(problem(response)["errors"]) == ["batch.0.properties"]
        assert not Event.objects.exists()

    def test_body_at_the_document_limit_reaches_validation(self, ingest):
        from enclave.core.jsondepth import MAX_DEPTH

        # {"batch": [{ "properties": ... }]}: three levels around the properties.
        response = ingest.post(URL, batch(track(properties=deep_properties(MAX_DEPTH - 3))))
        assert response.status_code == 422
        assert list(problem(response)["errors"]) == ["batch.0.properties"]

    def test_body_one_level_over_the_document_limit_is_400(self, ingest):
        from enclave.core.jsondepth import MAX_DEPTH

        response = ingest.post(URL, batch(track(properties=deep_properties(MAX_DEPTH - 2))))
        assert response.status_code == 400
        assert problem(response)["type"].endswith("/problems/too-deep")


@pytest.mark.django_db
class TestKeys:
    def test_request_without_key_is_401(self, world):
        response = ApiClient().post(URL, track())
        assert response.status_code == 401
        assert problem(response)["type"].endswith("/problems/key-missing")

    def test_key_without_events_write_is_403_insufficient_scope(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["people:read"])
        response = ApiClient(token).post(URL, track())
        assert response.status_code == 403
        assert problem(response)["type"].endswith("/problems/insufficient-scope")
        assert not Event.objects.exists()

    def test_write_only_key_cannot_read_people(self, ingest):
        response = ingest.get("/api/v1/people")
        assert response.status_code == 403
        assert problem(response)["type"].endswith("/problems/insufficient-scope")

    def test_revoked_key_is_401(self, world):
        from enclave.apikeys.actions import do_revoke_api_key

        token, key = make_key(world.account, world.members["owner"], scopes=["events:write"])
        do_revoke_api_key(key, actor=world.actor("owner"))
        response = ApiClient(token).post(URL, track())
        assert response.status_code == 401
        assert problem(response)["type"].endswith("/problems/key-revoked")

    def test_expired_key_is_401(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"],
                            expires_days=1)
        with clock.travel(dt.timedelta(days=2)):
            response = ApiClient(token).post(URL, track())
        assert response.status_code == 401
        assert problem(response)["type"].endswith("/problems/key-expired")

    def test_over_the_ingest_limit_is_429_with_retry_after(self, ingest):
        with override_settings(ENCLAVE_API_RATES={"ingest.key": "2/min", "ingest.ip": "100/min",
                                                  "api.key": "100/min", "api.ip": "100/min"}):
            codes = [ingest.post(URL, track(i)).status_code for i in range(3)]
            response = ingest.post(URL, track(9))
        assert codes == [202, 202, 429]
        assert 1 <= int(response["Retry-After"]) <= 60  # what is left of the minute window
        assert problem(response)["type"].endswith("/problems/rate-limited")
        assert Event.objects.count() == 2


@pytest.mark.django_db
class TestSchema:
    def test_openapi_documents_ingest_request_and_responses(self, client):
        spec = client.get("/api/v1/openapi.json").json()
        operation = spec["paths"]["/api/v1/events"]["post"]
        assert {"202", "401", "403", "413", "415", "422", "429"} <= set(operation["responses"])
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        titles = [option.get("title") for option in body["oneOf"]]
        assert titles == ["Track", "Identify", "Batch"]
        objects = [variant for option in body["oneOf"] for variant in option.get("anyOf", [option])]
        assert len(objects) == 4  # track, identify by email, identify by external id, batch
        assert all(variant["additionalProperties"] is False for variant in objects)

    def test_openapi_identify_names_its_person_by_email_or_external_id(self, client):
        spec = client.get("/api/v1/openapi.json").json()
        body = spec["paths"]["/api/v1/events"]["post"]["requestBody"]["content"][
            "application/json"]["schema"]
        identify = next(o for o in body["oneOf"] if o.get("title") == "Identify")
        assert [(v["required"], v["properties"][v["required"][-1]]["type"])
                for v in identify["anyOf"]] == [(["type", "email"], "string"),
                                                (["type", "external_id"], "string")]


@pytest.mark.django_db
class TestMediaType:
    def test_json_with_utf8_charset_is_accepted(self, ingest):
        response = ingest.post(URL, json.dumps(track()),
                               content_type="application/json; charset=utf-8")
        assert response.status_code == 202

    def test_json_in_another_charset_is_415(self, ingest):
        response = ingest.post(URL, json.dumps(track()).encode("utf-16"),
                               content_type="application/json; charset=utf-16")
        assert response.status_code == 415
        assert not Event.objects.exists()

    def test_get_is_405(self, ingest):
        assert ingest.get(URL).status_code == 405
