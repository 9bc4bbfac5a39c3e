"""Website tracking with a browser key (/api/ingest/v1/* from a web page): the key in the
body, accepted only from its origins, page / track / identify only, consent when the key
requires it, identify that never changes an existing person, per-visitor limits — and a
copied key that stays harmless. Django test client, real keys, real database."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from enclave.core.models import AuditEvent, AuditEventType
from enclave.events.models import AnonymousId, Event
from enclave.people.models import Person
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key
from tests.people.world import PERSON

SITE = "https://www.shop.example"


def url(call: str) -> str:
    return f"/api/ingest/v1/{call}"


class Page(ApiClient):
    """Posts as the browser library does: text/plain, the key in the body, an Origin."""

    def __init__(self, token: str, origin: str | None = SITE) -> None:
        super().__init__(None)
        self.key, self.origin = token, origin

    def send(self, call: str, message: dict, *, key: bool = True, **extra):
        body = {**message, "writeKey": self.key} if key else message
        if self.origin is not None:
            extra.setdefault("HTTP_ORIGIN", self.origin)
        return self.post(url(call), json.dumps(body), content_type="text/plain", **extra)


def browser_key(world, **kw):
    kw.setdefault("allowed_origins", [SITE])
    return make_key(world.account, world.members["owner"], scopes=[], kind="browser", **kw)


@pytest.fixture
def page(world) -> Page:
    token, key = browser_key(world)
    client = Page(token)
    client.public_id = key.public_id
    return client


def consent() -> dict:
    return {"consent": {"categoryPreferences": {"Analytics": True}}}


def events(world):
    return Event.objects.filter(account=world.account).order_by("id")


def slug(response) -> str:
    assert response["Content-Type"] == "application/problem+json"
    return response.json()["type"].rsplit("/", 1)[-1]


@pytest.mark.django_db
class TestFromTheSite:
    def test_page_call_with_the_key_in_the_body_is_stored(self, page, world):
        response = page.send("page", {"anonymousId": "v-1", "name": "Pricing",
                                      "properties": {"path": "/pricing"}})
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert [(e.type, e.name, e.anonymous_id) for e in events(world)] == [
            ("page", "Pricing", "v-1")]

    def test_answer_names_the_origin_so_the_page_may_read_it(self, page):
        response = page.send("track", {"anonymousId": "v-1", "event": "Clicked"})
        assert response["Access-Control-Allow-Origin"] == SITE
        assert "Origin" in response["Vary"]

    def test_refusal_from_an_allowed_origin_is_readable_by_the_page(self, page):
        response = page.send("alias", {"previousId": "v-1", "userId": "u-1"})
        assert response.status_code == 403
        assert response["Access-Control-Allow-Origin"] == SITE

    def test_subdomain_of_a_wildcard_origin_is_allowed(self, world):
        token, _ = browser_key(world, allowed_origins=["https://*.shop.example"])
        response = Page(token, "https://blog.shop.example").send(
            "track", {"anonymousId": "v-1", "event": "Read"})
        assert response.status_code == 200
        assert events(world).count() == 1

    def test_batch_of_allowed_calls_is_stored(self, page, world):
        response = page.send("batch", {"batch": [
            {"type": "page", "anonymousId": "v-1", "name": "Home"},
            {"type": "track", "anonymousId": "v-1", "event": "Clicked"}]})
        assert response.status_code == 200
        assert [e.type for e in events(world)] == ["page", "track"]


@pytest.mark.django_db
class TestOrigins:
    @pytest.mark.parametrize("origin", ["https://evil.example", "http://www.shop.example",
                                        "https://www.shop.example:8443",
                                        "https://www.shop.example.evil.example", "null"])
    def test_other_origin_is_refused_and_nothing_stored(self, page, world, origin):
        page.origin = origin
        response = page.send("track", {"anonymousId": "v-1", "event": "Clicked"})
        assert (response.status_code, slug(response)) == (403, "origin-not-allowed")
        assert not response.has_header("Access-Control-Allow-Origin")
        assert events(world).count() == 0

    def test_request_without_an_origin_is_refused(self, world):
        token, _ = browser_key(world)
        response = Page(token, origin=None).send("track", {"anonymousId": "v-1",
                                                           "event": "Clicked"})
        assert (response.status_code, slug(response)) == (403, "origin-not-allowed")
        assert events(world).count() == 0

    def test_wildcard_origin_does_not_allow_its_bare_host(self, world):
        token, _ = browser_key(world, allowed_origins=["https://*.shop.example"])
        response = Page(token, "https://shop.example").send(
            "track", {"anonymousId": "v-1", "event": "Read"})
        assert (response.status_code, slug(response)) == (403, "origin-not-allowed")

    def test_server_key_is_refused_from_a_web_page(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        response = ApiClient(token).post(url("track"), {"anonymousId": "v-1",
                                                        "event": "Clicked"}, HTTP_ORIGIN=SITE)
        assert (response.status_code, slug(response)) == (403, "origin-not-allowed")
        assert "server key" in response.json()["detail"]
        assert events(world).count() == 0

    def test_server_key_in_the_body_is_refused(self, world):
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        response = Page(token, origin=None).send("track", {"userId": "u-1", "event": "Paid"})
        assert (response.status_code, slug(response)) == (401, "key-malformed")
        assert events(world).count() == 0

    def test_server_key_in_a_plain_http_body_is_revoked(self, world):
        from django.test import Client

        token, key = make_key(world.account, world.members["owner"], scopes=["events:write"])
        response = Client().post(url("track"), json.dumps(
            {"userId": "u-1", "event": "Paid", "writeKey": token}),
            content_type="text/plain")
        assert response.status_code == 403
        key.refresh_from_db()
        assert key.exposed_at is not None
        assert key.revoked_at is not None

    def test_browser_key_in_the_authorization_header_is_held_to_its_origins(self, world):
        token, _ = browser_key(world)
        response = ApiClient(None).post(
            url("track"), {"anonymousId": "v-1", "event": "Clicked"},
            HTTP_AUTHORIZATION=f"Bearer {token}")
        assert (response.status_code, slug(response)) == (403, "origin-not-allowed")

    def test_unknown_key_in_the_body_is_refused(self, page, world):
        page.key = page.key[:-1] + ("a" if page.key[-1] != "a" else "b")
        response = page.send("track", {"anonymousId": "v-1", "event": "Clicked"})
        assert response.status_code == 401
        assert events(world).count() == 0

    def test_body_without_a_key_is_refused_as_unauthenticated(self, page, world):
        response = page.send("track", {"anonymousId": "v-1", "event": "Clicked"}, key=False)
        assert (response.status_code, slug(response)) == (401, "key-missing")

    def test_revoked_browser_key_stops_at_once(self, world):
        from enclave.apikeys.actions import do_revoke_api_key

        token, key = browser_key(world)
        do_revoke_api_key(key, actor=world.actor("owner"))
        response = Page(token).send("track", {"anonymousId": "v-1", "event": "Clicked"})
        assert response.status_code == 401


@pytest.mark.django_db
class TestWhatABrowserKeyMaySend:
    @pytest.mark.parametrize(("call", "message"), [
        ("alias", {"previousId": "v-1", "userId": "u-1"}),
        ("group", {"anonymousId": "v-1", "groupId": "acme"}),
        ("screen", {"anonymousId": "v-1", "name": "Home"}),
    ])
    def test_call_outside_page_track_identify_is_forbidden(self, page, world, call, message):
        response = page.send(call, message)
        assert (response.status_code, slug(response)) == (403, "forbidden")
        assert events(world).count() == 0

    def test_batch_with_one_forbidden_call_stores_nothing(self, page, world):
        response = page.send("batch", {"batch": [
            {"type": "track", "anonymousId": "v-1", "event": "Clicked"},
            {"type": "alias", "previousId": "v-1", "userId": "u-1"}]})
        assert response.status_code == 403
        assert "message 1" in response.json()["detail"]
        assert events(world).count() == 0

    def test_browser_key_is_refused_by_native_ingest(self, page, world):
        response = ApiClient(page.key).post("/api/v1/events", {
            "type": "identify", "email": PERSON["email"], "fields": {"first_name": "Mallory"}},
            HTTP_ORIGIN=SITE)
        assert (response.status_code, slug(response)) == (403, "insufficient-scope")
        world.person.refresh_from_db()
        assert world.person.first_name == PERSON["first_name"]

    def test_native_ingest_action_refuses_a_browser_principal(self, page, world):
        from enclave.access.principal import NotAuthorized
        from enclave.apikeys.auth import authenticate_token
        from enclave.events.actions import do_ingest_events
        from enclave.events.schema import Track

        with pytest.raises(NotAuthorized):
            do_ingest_events(world.account, [Track(event="x")],
                             actor=authenticate_token(page.key, None))
        assert events(world).count() == 0

    def test_track_naming_an_unknown_user_id_creates_nobody(self, page, world):
        before = Person.objects.filter(account=world.account).count()
        response = page.send("track", {"userId": "u-404", "anonymousId": "v-1",
                                       "event": "Clicked"})
        assert response.status_code == 200
        assert Person.objects.filter(account=world.account).count() == before
        assert events(world).get().person_id is None

    def test_track_naming_a_known_user_id_is_theirs(self, page, world):
        world.person.external_id = "u-1"
        world.person.save(update_fields=["external_id"])
        page.send("track", {"userId": "u-1", "anonymousId": "v-1", "event": "Clicked"})
        assert events(world).get().person_id == world.person.pk

    def test_identify_links_the_visitor_but_never_changes_an_existing_person(
            self, page, world):
        world.person.external_id = "u-1"
        world.person.save(update_fields=["external_id"])
        response = page.send("identify", {"userId": "u-1", "anonymousId": "v-1", "traits": {
            "email": "attacker@evil.example", "firstName": "Mallory"}})
        assert response.status_code == 200
        world.person.refresh_from_db()
        assert (world.person.email, world.person.first_name) == (PERSON["email"],
                                                                  PERSON["first_name"])
        assert AnonymousId.objects.get(anonymous_id="v-1").person_id == world.person.pk

    def test_identify_by_email_trait_names_nobody(self, page, world):
        page.send("identify", {"anonymousId": "v-1", "traits": {"email": PERSON["email"]}})
        assert not AnonymousId.objects.filter(anonymous_id="v-1").exists()
        assert events(world).get().person_id is None

    def test_identify_in_link_mode_creates_the_person_without_fields(self, page, world):
        page.send("identify", {"userId": "u-new", "anonymousId": "v-1",
                               "traits": {"firstName": "Ada", "email": "ada@lab.example"}})
        person = Person.objects.get(account=world.account, external_id="u-new")
        assert (person.email, person.first_name) == ("", "")

    def test_identify_in_fill_new_mode_fills_a_person_it_creates(self, world):
        token, _ = browser_key(world, identify_mode="fill_new")
        Page(token).send("identify", {"userId": "u-new", "anonymousId": "v-1",
                                      "traits": {"firstName": "Ada",
                                                 "email": "ada@lab.example"}})
        person = Person.objects.get(account=world.account, external_id="u-new")
        assert (person.email, person.first_name) == ("ada@lab.example", "Ada")

    def test_identify_in_fill_new_mode_leaves_an_existing_person_alone(self, world):
        world.person.external_id = "u-1"
        world.person.save(update_fields=["external_id"])
        token, _ = browser_key(world, identify_mode="fill_new")
        response = Page(token).send("identify", {"userId": "u-1", "anonymousId": "v-1",
                                                 "traits": {"firstName": "Mallory"}})
        assert response.status_code == 200
        world.person.refresh_from_db()
        assert world.person.first_name == PERSON["first_name"]

    def test_identify_in_fill_new_mode_never_takes_another_persons_email(self, world):
        token, _ = browser_key(world, identify_mode="fill_new")
        response = Page(token).send("identify", {"userId": "u-new", "traits": {
            "email": PERSON["email"], "firstName": "Mallory"}})
        assert response.status_code == 200
        person = Person.objects.get(account=world.account, external_id="u-new")
        assert person.email == ""
        assert Person.objects.filter(account=world.account,
                                     email=PERSON["email"]).get() == world.person

    def test_traits_in_context_are_ignored(self, world):
        token, _ = browser_key(world, identify_mode="fill_new")
        Page(token).send("identify", {"userId": "u-new", "context": {
            "traits": {"firstName": "Mallory"}}})
        person = Person.objects.get(account=world.account, external_id="u-new")
        assert person.first_name == ""
        assert "traits" not in events(world).get().context

    def test_answer_is_the_same_whether_the_named_person_exists(self, page, world):
        world.person.external_id = "u-1"
        world.person.save(update_fields=["external_id"])
        known = page.send("identify", {"userId": "u-1", "anonymousId": "v-1"})
        unknown = page.send("identify", {"userId": "u-2", "anonymousId": "v-2"})
        assert (known.status_code, known.content) == (unknown.status_code, unknown.content)


@pytest.mark.django_db
class TestConsent:
    def test_call_without_consent_is_refused_when_the_key_requires_it(self, world):
        token, _ = browser_key(world, require_consent=True)
        response = Page(token).send("page", {"anonymousId": "v-1"})
        assert response.status_code == 422
        assert "context.consent" in response.json()["errors"]
        assert events(world).count() == 0

    def test_call_with_consent_is_stored_when_the_key_requires_it(self, world):
        token, _ = browser_key(world, require_consent=True)
        response = Page(token).send("page", {"anonymousId": "v-1", "context": consent()})
        assert response.status_code == 200
        assert events(world).count() == 1

    def test_consent_refused_for_analytics_is_no_consent(self, world):
        token, _ = browser_key(world, require_consent=True)
        response = Page(token).send("page", {"anonymousId": "v-1", "context": {
            "consent": {"categoryPreferences": {"analytics": False, "ads": True}}}})
        assert response.status_code == 422
        assert events(world).count() == 0

    def test_key_without_the_requirement_takes_calls_without_consent(self, page, world):
        assert page.send("page", {"anonymousId": "v-1"}).status_code == 200


@pytest.mark.django_db
class TestLimits:
    @override_settings(ENCLAVE_API_RATES={"ingest.browser_anonymous": "3/min",
                                          "ingest.browser_ip": "100/min",
                                          "ingest.key": "100/min", "ingest.ip": "100/min"})
    def test_one_visitor_over_its_limit_gets_429_and_others_go_on(self, page, world):
        answers = [page.send("track", {"anonymousId": "v-1", "event": "Clicked"}).status_code
                   for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        assert page.send("track", {"anonymousId": "v-2", "event": "Clicked"}
                         ).status_code == 200
        assert events(world).count() == 4

    @override_settings(ENCLAVE_API_RATES={"ingest.browser_anonymous": "100/min",
                                          "ingest.browser_ip": "2/min",
                                          "ingest.key": "100/min", "ingest.ip": "100/min"})
    def test_one_address_over_its_limit_gets_429_whatever_ids_it_sends(self, page):
        answers = [page.send("track", {"anonymousId": f"v-{i}", "event": "Clicked"},
                             REMOTE_ADDR="203.0.113.9").status_code for i in range(3)]
        assert answers == [200, 200, 429]

    def test_request_naming_many_visitors_is_refused(self, page, world):
        response = page.send("batch", {"batch": [
            {"type": "track", "anonymousId": f"v-{i}", "event": "Clicked"}
            for i in range(11)]})
        assert (response.status_code, slug(response)) == (403, "forbidden")
        assert events(world).count() == 0

    def test_request_with_many_calls_is_refused(self, page, world):
        response = page.send("batch", {"batch": [
            {"type": "track", "anonymousId": "v-1", "event": "Clicked"} for _ in range(21)]})
        assert (response.status_code, slug(response)) == (403, "forbidden")
        assert events(world).count() == 0

    @override_settings(ENCLAVE_API_RATES={"ingest.browser_anonymous": "3/min",
                                          "ingest.browser_ip": "100/min",
                                          "ingest.key": "100/min", "ingest.ip": "100/min"})
    def test_each_call_of_a_batch_counts_against_the_visitors_limit(self, page, world):
        response = page.send("batch", {"batch": [
            {"type": "track", "anonymousId": "v-1", "event": "Clicked"} for _ in range(4)]})
        assert response.status_code == 429
        assert events(world).count() == 0

    @override_settings(ENCLAVE_API_RATES={"ingest.browser_anonymous": "100/min",
                                          "ingest.browser_ip": "100/min",
                                          "ingest.key": "2/min", "ingest.ip": "100/min"})
    def test_refused_origin_does_not_spend_the_keys_limit(self, page, world):
        page.origin = "https://evil.example"
        assert [page.send("track", {"anonymousId": "v-1", "event": "x"}).status_code
                for _ in range(3)] == [403, 403, 403]
        page.origin = SITE
        assert page.send("track", {"anonymousId": "v-1", "event": "x"}).status_code == 200

    def test_audit_row_names_the_browser_key(self, page, world):
        page.send("track", {"anonymousId": "v-1", "event": "Clicked"})
        row = AuditEvent.objects.filter(event_type=AuditEventType.EVENTS_INGESTED).get()
        assert (row.extra_data["api_key"], row.extra_data["track"]) == (page.public_id, 1)
