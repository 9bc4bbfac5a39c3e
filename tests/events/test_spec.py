"""/api/ingest/v1/*: the tracking spec's HTTP API (Segment / RudderStack) over the Django
test client (HTTPS, real API keys, real database)."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging

import pytest
from django.db import IntegrityError
from django.test import override_settings

from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.events import actions
from enclave.events.models import AnonymousId, Event
from enclave.people.actions import do_define_field
from enclave.people.models import Person
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key

BATCH = "/api/ingest/v1/batch"
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def url(call: str) -> str:
    return f"/api/ingest/v1/{call}"


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


class SpecClient(ApiClient):
    """Sends the key as the SDKs do: the Basic user name, no password."""

    def generic(self, method, path, data="", content_type="application/json", **extra):
        if self.token is not None:
            extra.setdefault("HTTP_AUTHORIZATION", basic(self.token))
        return super().generic(method, path, data, content_type, **extra)


@pytest.fixture
def sdk(world) -> SpecClient:
    token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
    return SpecClient(token)


def track(user: str | None = "user-1", event: str = "Viewed pricing", **extra) -> dict:
    message = {"type": "track", "event": event, "properties": {"plan": "pro"}, **extra}
    if user is not None:
        message["userId"] = user
    return message


def batch(*messages, **extra) -> dict:
    return {"batch": list(messages), **extra}


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def events(world):
    return Event.objects.filter(account=world.account).order_by("id")


@pytest.mark.django_db
class TestCalls:
    def test_batch_is_stored_and_answered_as_the_sdks_expect(self, sdk, world):
        response = sdk.post(BATCH, batch(track(), track(event="Signed up")))
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert [(e.type, e.name) for e in events(world)] == [
            ("track", "Viewed pricing"), ("track", "Signed up")]

    def test_track_with_user_id_is_attached_to_the_person_with_that_external_id(
            self, sdk, world):
        sdk.post(url("track"), track("user-7"))
        person = Person.objects.get(account=world.account, external_id="user-7")
        assert events(world).get().person_id == person.pk

    def test_identify_sets_the_fields_its_traits_name(self, sdk, world):
        sdk.post(url("identify"), {"userId": "u-1", "traits": {
            "email": "Ada@Example.com", "firstName": "Ada", "last_name": "Lovelace",
            "company": {"name": "Analytical Engines", "plan": "big"},
            "address": {"street": "12 St James's Square", "city": "London"}}})
        person = Person.objects.get(account=world.account, external_id="u-1")
        assert (person.email, person.first_name, person.last_name, person.company,
                person.address) == ("ada@example.com", "Ada", "Lovelace",
                                    "Analytical Engines", "12 St James's Square, London")

    def test_identify_keeps_traits_without_a_field_on_the_stored_event(self, sdk, world):
        sdk.post(url("identify"), {"userId": "u-1", "traits": {
            "email": "ada@example.com", "firstName": "Ada", "favourite_colour": "green"}})
        assert events(world).get().properties == {"favourite_colour": "green"}

    def test_identify_reads_traits_from_context_as_rudderstack_sends_them(self, sdk, world):
        sdk.post(url("identify"), {"userId": "u-1", "context": {"traits": {
            "email": "ada@example.com", "firstName": "Ada"}}})
        person = Person.objects.get(external_id="u-1")
        assert (person.email, person.first_name) == ("ada@example.com", "Ada")

    def test_anonymous_identify_keeps_its_traits_on_the_event_but_custom_fields(
            self, sdk, world):
        do_define_field(world.account, "salary", "Salary", "text", encrypt_at_rest=True,
                        pd_class="sensitive", actor=world.actor("owner"))
        sdk.post(url("identify"), {"anonymousId": "anon-1", "traits": {
            "firstName": "Ada", "salary": "98765"}})
        stored = events(world).get()
        assert (stored.person_id, stored.properties) == (None, {"firstName": "Ada"})

    def test_identify_sets_a_custom_field_named_by_a_trait(self, sdk, world):
        do_define_field(world.account, "plan", "Plan", "text", actor=world.actor("owner"))
        sdk.post(url("identify"), {"userId": "u-1", "traits": {"plan": "pro"}})
        assert Person.objects.get(external_id="u-1").custom == {"plan": "pro"}

    def test_trait_that_does_not_fit_its_field_is_left_out_and_the_call_stored(
            self, sdk, world):
        do_define_field(world.account, "score", "Score", "number", actor=world.actor("owner"))
        response = sdk.post(url("identify"), {"userId": "u-1", "traits": {
            "score": "very high", "firstName": "Ada"}})
        assert response.status_code == 200
        person = Person.objects.get(external_id="u-1")
        assert (person.first_name, person.custom) == ("Ada", {})
        row = AuditEvent.objects.get(event_type=AuditEventType.EVENTS_INGESTED)
        assert row.extra_data["traits_left_out"] == 1

    def test_sealed_custom_field_value_never_lands_in_the_event_in_clear(self, sdk, world):
        do_define_field(world.account, "salary", "Salary", "text", encrypt_at_rest=True,
                        pd_class="sensitive", actor=world.actor("owner"))
        sdk.post(url("identify"), {"userId": "u-1", "traits": {"salary": "98765"}})
        stored = events(world).get()
        assert "98765" not in json.dumps([stored.properties, stored.context])

    def test_page_is_stored_under_its_name_with_its_category(self, sdk, world):
        sdk.post(url("page"), {"anonymousId": "anon-1", "name": "Pricing",
                               "category": "Docs", "properties": {"path": "/pricing"}})
        stored = events(world).get()
        assert (stored.type, stored.name, stored.properties) == (
            "page", "Pricing", {"path": "/pricing", "category": "Docs"})

    def test_screen_is_stored_under_its_name(self, sdk, world):
        sdk.post(url("screen"), {"userId": "u-1", "name": "Settings"})
        assert (events(world).get().type, events(world).get().name) == ("screen", "Settings")

    def test_group_keeps_the_group_id_and_traits_and_no_event_name(self, sdk, world):
        sdk.post(url("group"), {"userId": "u-1", "groupId": "acme",
                                "traits": {"industry": "rockets"}})
        stored = events(world).get()
        assert (stored.type, stored.name, stored.properties) == (
            "group", "", {"industry": "rockets", "groupId": "acme"})

    def test_call_type_comes_from_the_path(self, sdk, world):
        sdk.post(url("page"), {"type": "track", "anonymousId": "a", "name": "Home"})
        assert events(world).get().type == "page"

    def test_context_is_kept_without_traits_and_batch_context_fills_in(self, sdk, world):
        sdk.post(BATCH, batch(
            track(context={"page": {"path": "/pricing"}, "traits": {"email": "x@y.example"}}),
            context={"library": {"name": "analytics-python"}, "page": {"path": "/"}}))
        assert events(world).get().context == {"library": {"name": "analytics-python"},
                                               "page": {"path": "/pricing"}}

    def test_text_plain_body_is_accepted_as_the_browser_beacons_send_it(self, sdk, world):
        response = sdk.post(url("track"), json.dumps(track()), content_type="text/plain")
        assert response.status_code == 200
        assert events(world).count() == 1

    def test_gzip_body_is_accepted(self, sdk, world):
        body = gzip.compress(json.dumps(batch(track(), track())).encode())
        response = sdk.post(BATCH, body, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 200
        assert events(world).count() == 2

    def test_repeated_message_id_is_acknowledged_and_stored_once(self, sdk, world):
        first = sdk.post(BATCH, batch(track(messageId="m-1")))
        again = sdk.post(BATCH, batch(track(messageId="m-1"), track(messageId="m-2")))
        assert first.status_code == again.status_code == 200
        assert sorted(e.message_id for e in events(world)) == ["m-1", "m-2"]

    def test_one_audit_row_per_batch_counts_calls_without_values(self, sdk, world):
        sdk.post(BATCH, batch(track(), {"type": "identify", "userId": "user-1",
                                        "traits": {"email": "ada@example.com"}},
                              {"type": "page", "anonymousId": "a-1"}))
        extra = AuditEvent.objects.get(event_type=AuditEventType.EVENTS_INGESTED).extra_data
        assert (extra["track"], extra["identify"], extra["page"], extra["stored"]) == (
            1, 1, 1, 3)
        assert "ada" not in json.dumps(extra)
        assert "a-1" not in json.dumps(extra)


@pytest.mark.django_db
class TestAnonymousIds:
    def test_identify_attaches_the_anonymous_ids_earlier_events(self, sdk, world):
        sdk.post(url("page"), {"anonymousId": "anon-1", "name": "Pricing"})
        assert events(world).get().person_id is None
        sdk.post(url("identify"), {"anonymousId": "anon-1", "userId": "u-1"})
        person = Person.objects.get(external_id="u-1")
        assert {e.person_id for e in events(world)} == {person.pk}

    def test_later_anonymous_calls_go_to_the_linked_person(self, sdk, world):
        sdk.post(url("identify"), {"anonymousId": "anon-1", "userId": "u-1"})
        sdk.post(url("track"), {"anonymousId": "anon-1", "event": "Clicked"})
        person = Person.objects.get(external_id="u-1")
        assert events(world).get(name="Clicked").person_id == person.pk

    def test_anonymous_call_earlier_in_the_same_batch_is_attached(self, sdk, world):
        sdk.post(BATCH, batch({"type": "page", "anonymousId": "anon-1", "name": "Home"},
                              {"type": "identify", "anonymousId": "anon-1", "userId": "u-1"}))
        person = Person.objects.get(external_id="u-1")
        assert [e.person_id for e in events(world)] == [person.pk, person.pk]

    def test_identify_by_email_trait_links_the_anonymous_id(self, sdk, world):
        sdk.post(url("identify"), {"anonymousId": "anon-1",
                                   "traits": {"email": "ada@example.com"}})
        person = Person.objects.get(email="ada@example.com")
        assert AnonymousId.objects.get(anonymous_id="anon-1").person_id == person.pk

    def test_alias_links_the_previous_id_to_the_user(self, sdk, world):
        sdk.post(url("track"), {"anonymousId": "old-id", "event": "Browsed"})
        sdk.post(url("alias"), {"previousId": "old-id", "userId": "u-1"})
        person = Person.objects.get(external_id="u-1")
        assert events(world).get(name="Browsed").person_id == person.pk

    def test_first_link_wins_so_a_later_call_cannot_take_the_visitor_over(
            self, sdk, world):
        sdk.post(url("identify"), {"anonymousId": "anon-1", "userId": "victim"})
        sdk.post(url("identify"), {"anonymousId": "anon-1", "userId": "attacker"})
        sdk.post(url("track"), {"anonymousId": "anon-1", "event": "Paid"})
        victim = Person.objects.get(external_id="victim")
        assert events(world).get(name="Paid").person_id == victim.pk

    def test_aliases_naming_each_other_never_merge_people(self, sdk, world):
        sdk.post(url("alias"), {"previousId": "a", "userId": "b"})
        response = sdk.post(url("alias"), {"previousId": "b", "userId": "a"})
        assert response.status_code == 200
        people = Person.objects.filter(account=world.account, external_id__in=["a", "b"])
        assert people.count() == 2
        links = dict(AnonymousId.objects.values_list("anonymous_id", "person__external_id"))
        assert links == {"a": "b", "b": "a"}

    def test_links_are_per_account(self, sdk, world):
        sdk.post(url("identify"), {"anonymousId": "anon-1", "userId": "u-1"})
        token, _ = make_key(world.other, world.other_owner, scopes=["events:write"])
        SpecClient(token).post(url("track"), {"anonymousId": "anon-1", "event": "X"})
        assert Event.objects.get(account=world.other).person_id is None

    def test_erasing_the_person_removes_their_links(self, sdk, world):
        from enclave.people.actions import do_erase_person

        sdk.post(url("identify"), {"anonymousId": "anon-1", "userId": "u-1"})
        person = Person.objects.get(external_id="u-1")
        do_erase_person(person, actor=world.actor("owner"))
        assert not AnonymousId.objects.exists()
        assert not events(world).exists()


@pytest.mark.django_db
class TestTime:
    def test_client_clock_skew_is_corrected_with_sent_at(self, sdk, world):
        # The client's clock is an hour fast; the event happened a minute before it sent.
        fast = T0 + dt.timedelta(hours=1)
        with clock.frozen(T0):
            sdk.post(BATCH, batch(track(timestamp=(fast - dt.timedelta(minutes=1))
                                        .isoformat()), sentAt=fast.isoformat()))
        assert events(world).get().occurred_at == T0 - dt.timedelta(minutes=1)

    def test_original_timestamp_is_corrected_by_the_messages_own_sent_at(self, sdk, world):
        with clock.frozen(T0):
            sdk.post(url("track"), track(originalTimestamp="2026-06-01T10:00:00Z",
                                         sentAt="2026-06-01T10:00:30Z"))
        assert events(world).get().occurred_at == T0 - dt.timedelta(seconds=30)

    def test_timestamp_in_the_future_is_stored_as_received(self, sdk, world):
        with clock.frozen(T0):
            sdk.post(url("track"), track(timestamp="2030-01-01T00:00:00Z"))
        assert events(world).get().occurred_at == T0

    def test_timestamp_without_an_offset_is_422(self, sdk, world):
        response = sdk.post(url("track"), track(timestamp="2026-05-01T08:00:00"))
        assert list(problem(response)["errors"]) == ["timestamp"]
        assert not events(world).exists()

    def test_batch_sent_at_without_an_offset_is_422(self, sdk, world):
        response = sdk.post(BATCH, batch(track(timestamp="2026-01-01T00:00:00Z"),
                                         sentAt="2026-01-01T00:00:00"))
        assert list(problem(response)["errors"]) == ["sentAt"]
        assert not events(world).exists()

    def test_time_with_a_space_for_the_t_is_422(self, sdk, world):
        response = sdk.post(url("track"), track(timestamp="2026-01-01 00:00:00Z"))
        assert list(problem(response)["errors"]) == ["timestamp"]

    def test_time_before_year_1_in_utc_is_stored_as_received(self, sdk, world):
        with clock.frozen(T0):
            response = sdk.post(url("track"), track(timestamp="0001-01-01T00:00:00+14:00"))
        assert response.status_code == 200
        assert events(world).get().occurred_at == T0

    def test_skew_beyond_the_calendar_is_stored_as_received(self, sdk, world):
        with clock.frozen(T0):
            response = sdk.post(url("track"), track(timestamp="0001-01-01T00:00:00Z",
                                                    sentAt="9999-12-31T00:00:00Z"))
        assert response.status_code == 200
        assert events(world).get().occurred_at == T0


@pytest.mark.django_db
class TestKeys:
    def test_bearer_key_is_accepted_too(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        assert ApiClient(token).post(url("track"), track()).status_code == 200

    def test_unknown_key_is_401_with_the_members_the_sdks_read(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        response = SpecClient(token[:-8] + "AAAAAAAA").post(url("track"), track())
        body = problem(response)
        assert response.status_code == 401
        assert (body["code"], body["message"]) == (body["type"].rsplit("/", 1)[1],
                                                   body["detail"])
        assert response["WWW-Authenticate"] == 'Basic realm="enclave"'

    def test_basic_header_that_is_not_base64_is_401_key_malformed(self, world):
        response = ApiClient().post(url("track"), track(),
                                    HTTP_AUTHORIZATION="Basic %%%not-base64")
        assert response.status_code == 401
        assert problem(response)["code"] == "key-malformed"

    def test_missing_key_is_401(self, world):
        assert ApiClient().post(url("track"), track()).status_code == 401

    def test_key_without_events_write_is_403_and_stores_nothing(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["people:read"])
        response = SpecClient(token).post(url("track"), track())
        assert (response.status_code, problem(response)["code"]) == (
            403, "insufficient-scope")
        assert not Event.objects.exists()

    def test_key_never_reaches_a_log_line(self, world, caplog):
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        wrong = token[:-8] + "AAAAAAAA"
        with caplog.at_level(logging.DEBUG):
            SpecClient(token).post(url("track"), track())
            SpecClient(wrong).post(url("track"), track())
        text = caplog.text
        for secret in (token, wrong, basic(token)[6:], basic(wrong)[6:]):
            assert secret not in text

    def test_batch_that_keeps_meeting_concurrent_writes_is_503_which_the_sdks_retry(
            self, sdk, world, monkeypatch):
        def collide(*args, **kwargs):
            raise IntegrityError("duplicate key value violates unique constraint")

        monkeypatch.setattr(actions, "_ingest_spec", collide)
        response = sdk.post(url("track"), track())
        assert (response.status_code, problem(response)["code"]) == (503, "busy")
        assert response["Retry-After"] == "1"
        assert not Event.objects.exists()

    def test_over_the_ingest_limit_is_429_which_the_sdks_retry(self, sdk):
        with override_settings(ENCLAVE_API_RATES={"ingest.key": "1/min", "ingest.ip": "100/min",
                                                  "api.key": "100/min", "api.ip": "100/min"}):
            first = sdk.post(url("track"), track())
            second = sdk.post(url("track"), track())
        assert (first.status_code, second.status_code) == (200, 429)
        assert problem(second)["code"] == "rate-limited"
        assert int(second["Retry-After"]) >= 1


@pytest.mark.django_db
class TestExistence:
    def test_audit_row_does_not_say_whether_an_anonymous_id_was_seen(self, world):
        site, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        SpecClient(site).post(BATCH, batch(
            {"type": "page", "anonymousId": "visitor-1", "name": "Pricing"},
            {"type": "page", "anonymousId": "visitor-1", "name": "Checkout"}))
        token, _ = make_key(world.account, world.members["owner"],
                            scopes=["events:write", "people:read", "audit:read"])
        for user, anon in (("probe-1", "visitor-1"), ("probe-2", "never-seen")):
            SpecClient(token).post(url("identify"), {"userId": user, "anonymousId": anon})
        seen, unseen = (
            {k: v for k, v in row.extra_data.items() if k != "people_created"}
            for row in AuditEvent.objects.filter(
                event_type=AuditEventType.EVENTS_INGESTED).order_by("id")[1:])
        assert seen == unseen

    def test_write_only_key_gets_the_same_answer_whether_an_email_is_taken_or_not(
            self, sdk, world):
        taken = sdk.post(url("identify"), {"userId": "new-1",
                                           "traits": {"email": world.person.email}})
        free = sdk.post(url("identify"), {"userId": "new-2",
                                          "traits": {"email": "free@example.com"}})
        assert (taken.status_code, taken.content) == (200, b'{"success":true}')
        assert (free.status_code, free.content) == (200, b'{"success":true}')

    def test_key_that_reads_the_audit_log_but_not_people_may_not_name_them(self, world):
        token, _ = make_key(world.account, world.members["owner"],
                            scopes=["events:write", "audit:read"])
        response = SpecClient(token).post(BATCH, batch(
            {"type": "identify", "userId": "u-1", "traits": {"email": "a@example.com"}}))
        assert response.status_code == 422
        assert sorted(problem(response)["errors"]) == ["batch.0.traits.email",
                                                       "batch.0.userId"]
        assert not Event.objects.exists()


@pytest.mark.django_db
class TestBadInput:
    def test_message_without_user_or_anonymous_id_refuses_the_whole_batch(self, sdk, world):
        response = sdk.post(BATCH, batch(track(), track(user=None)))
        assert response.status_code == 422
        assert problem(response)["errors"] == {
            "batch.1.userId": ["Every call needs a userId or an anonymousId."]}
        assert not events(world).exists()

    def test_track_without_event_is_422(self, sdk):
        response = sdk.post(url("track"), {"userId": "u-1"})
        assert list(problem(response)["errors"]) == ["event"]

    def test_alias_of_an_id_to_itself_only_links_it_to_its_person(self, sdk, world):
        response = sdk.post(url("alias"), {"userId": "u-1", "previousId": "u-1"})
        assert response.status_code == 200
        person = Person.objects.get(account=world.account, external_id="u-1")
        assert AnonymousId.objects.get(anonymous_id="u-1").person_id == person.pk

    def test_blank_id_is_422(self, sdk, world):
        response = sdk.post(url("track"), track(anonymousId="   "))
        assert list(problem(response)["errors"]) == ["anonymousId"]

    def test_members_enclave_does_not_read_are_ignored_whatever_they_hold(self, sdk, world):
        body = ('{"batch": [{"type": "track", "userId": "u", "event": "e", '
                '"integrations": {"x": 1e400}, "weird\\u0000": "\\u0000"}], '
                '"writeKey": [1e400], "note": "\\\\u0000 is text"}')
        response = sdk.post(BATCH, body)
        assert response.status_code == 200
        stored = events(world).get()
        assert (stored.properties, stored.context) == ({}, {})

    @pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
    def test_numeric_id_outside_64_bits_is_422(self, sdk, world, number):
        response = sdk.post(url("track"), f'{{"userId": {number}, "event": "e"}}')
        assert list(problem(response)["errors"]) == ["userId"]
        assert not events(world).exists()

    def test_whole_float_id_is_taken_as_its_number(self, sdk, world):
        sdk.post(url("track"), '{"userId": 42.0, "event": "e"}')
        assert Person.objects.filter(account=world.account, external_id="42").exists()

    def test_fractional_id_is_422(self, sdk):
        response = sdk.post(url("track"), '{"userId": 4.5, "event": "e"}')
        assert problem(response)["errors"] == {"userId": ["An id is text or a whole number."]}

    def test_group_without_group_id_is_422(self, sdk):
        assert sdk.post(url("group"), {"userId": "u-1"}).status_code == 422

    def test_unknown_call_type_in_a_batch_is_422(self, sdk):
        response = sdk.post(BATCH, batch({"type": "purchase", "userId": "u-1"}))
        assert list(problem(response)["errors"]) == ["batch.0.type"]

    def test_id_over_100_characters_is_422(self, sdk):
        response = sdk.post(url("track"), track(user="u" * 101))
        assert list(problem(response)["errors"]) == ["userId"]

    def test_numeric_user_id_is_taken_as_text(self, sdk, world):
        sdk.post(url("track"), track(user=42))
        assert Person.objects.filter(account=world.account, external_id="42").exists()

    def test_nul_character_is_422_and_stores_nothing(self, sdk, world):
        response = sdk.post(url("track"), track(properties={"q": "a\u0000b"}))
        assert response.status_code == 422
        assert not events(world).exists()

    @pytest.mark.parametrize("member", ["userId", "messageId", "type"])
    def test_nul_in_an_id_or_the_call_type_is_422(self, sdk, world, member):
        response = sdk.post(url("track"), {**track(), member: "a\u0000b"})
        assert list(problem(response)["errors"]) == [member]
        assert not events(world).exists()

    def test_malformed_json_is_400(self, sdk):
        response = sdk.post(BATCH, b"{not json")
        assert (response.status_code, problem(response)["code"]) == (400, "invalid-body")

    def test_malformed_gzip_is_400_and_stores_nothing(self, sdk, world):
        body = gzip.compress(json.dumps(batch(track())).encode())[:-6]
        response = sdk.post(BATCH, body, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 400
        assert not events(world).exists()

    def test_gzip_expanding_past_500_kb_is_413(self, sdk, world):
        body = gzip.compress(b'{"batch": [' + b" " * 600_000 + b"]}")
        assert len(body) < 2000
        response = sdk.post(BATCH, body, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413
        assert not events(world).exists()

    def test_unknown_content_encoding_is_400(self, sdk):
        response = sdk.post(BATCH, json.dumps(batch(track())), HTTP_CONTENT_ENCODING="br")
        assert response.status_code == 400

    def test_body_over_500_kb_is_413(self, sdk, world):
        messages = [track(properties={"pad": "x" * 20_000}) for _ in range(30)]
        response = sdk.post(BATCH, batch(*messages))
        assert (response.status_code, problem(response)["code"]) == (
            413, "payload-too-large")
        assert not events(world).exists()

    def test_message_over_32_kb_refuses_the_batch(self, sdk, world):
        response = sdk.post(BATCH, batch(track(), track(properties={"pad": "x" * 33_000})))
        assert response.status_code == 413
        assert "Message 1" in problem(response)["detail"]
        assert not events(world).exists()

    def test_message_at_32_kb_is_stored(self, sdk, world):
        pad = 32 * 1024 - len(json.dumps(track(properties={"pad": ""})))
        assert sdk.post(BATCH, batch(track(properties={"pad": "x" * pad}))).status_code == 200

    def test_deeply_nested_body_is_400(self, sdk):
        body = '{"batch": [' + "[" * 40 + "]" * 40 + "]}"
        assert problem(sdk.post(BATCH, body))["code"] == "too-deep"

    def test_properties_nested_past_the_stored_limit_are_422(self, sdk):
        deep: dict = {}
        node = deep
        for _ in range(20):
            node["a"] = {}
            node = node["a"]
        response = sdk.post(url("track"), track(properties=deep))
        assert list(problem(response)["errors"]) == ["properties"]

    def test_wrong_content_type_is_415(self, sdk):
        response = sdk.post(url("track"), json.dumps(track()), content_type="text/xml")
        assert response.status_code == 415

    def test_batch_of_2500_new_visitors_identified_at_once_is_stored(self, sdk, world):
        calls = [{"type": "identify", "userId": f"u{i}", "anonymousId": f"a{i}"}
                 for i in range(2500)]
        response = sdk.post(BATCH, batch(*calls))
        assert response.status_code == 200
        assert AnonymousId.objects.filter(account=world.account).count() == 2500

    def test_batch_over_2500_messages_is_422(self, sdk, world):
        response = sdk.post(BATCH, batch(*[{"type": "page", "anonymousId": "a"}] * 2501))
        assert list(problem(response)["errors"]) == ["batch"]
        assert not events(world).exists()

    def test_lone_surrogate_is_refused_not_a_server_error(self, sdk, world):
        response = sdk.post(url("track"), '{"userId": "u", "event": "\\ud800x"}')
        assert response.status_code == 400
        assert not events(world).exists()

    def test_empty_batch_is_422(self, sdk):
        assert sdk.post(BATCH, batch()).status_code == 422

    def test_json_array_body_is_400(self, sdk):
        assert sdk.post(BATCH, "[]").status_code == 400
