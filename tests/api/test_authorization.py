"""API authorization tests generated from the tables: the one endpoint registry
(enclave.access.endpoints, its API entries), the permission table (access.permissions),
the scope table (access.scopes) and the visibility table (people.visibility). The web
entries of the same registry are generated in tests/people/test_authorization.py.

Two ways a key's permissions get narrowed, each for every built-in role:
- ``ceiling``: the owner makes a key whose role ceiling is the role (with every scope
  that fits under it);
- ``creator``: a member makes a key as owner (every scope), then is moved to the role —
  the key follows its creator's CURRENT permissions.
For each: endpoint → expected status (200/201/204, 403 insufficient-scope, 403 forbidden),
and endpoint × personal field → visible / masked / hidden in the response. Every
endpoint with an id answers another tenant's id exactly like a missing one (404).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from enclave.access import endpoints
from enclave.access.permissions import ROLE_PERMISSIONS
from enclave.access.scopes import SCOPES, scope_permissions
from enclave.accounts.models import Membership
from enclave.audience.actions import do_add_segment_people, do_create_segment
from enclave.audience.subscriptions import do_create_topic
from enclave.core import clock
from enclave.messaging.models import Broadcast, SenderDomain
from enclave.people import visibility
from enclave.people.actions import do_update_person
from enclave.people.models import PersonTag
from enclave.webhooks.models import WebhookEndpoint
from tests.api.conftest import ApiClient, scopes_within
from tests.apikeys.factories import make_key
from tests.messaging.world import (
    broadcast_payload,
    broadcasts,
    sender_domains,
    templates,
    transactional_messages,
)
from tests.people.world import MASKED, PERSON, ROLES, new_member
from tests.webhooks.world import webhook_endpoints

TAG = "vip"
PAYLOADS = {
    ("api-people", "POST"): {"email": "made@example.com", "company": "Made Co"},
    ("api-people-upsert", "POST"): {"external_id": PERSON["external_id"],
                                    "country": "FR"},
    ("api-person", "PATCH"): {"company": "Edited Co"},
    ("api-person-tags", "POST"): {"tags": ["gold"]},
    ("api-fields", "POST"): {"key": "tier", "type": "select", "options": ["a", "b"],
                             "pd_class": "none"},
    ("api-events", "POST"): {"type": "track", "event": "Viewed pricing"},
    # The tracking spec's calls, each about an anonymous visitor (events.write only).
    ("api-ingest-batch", "POST"): {"batch": [{"type": "track", "anonymousId": "visitor-1",
                                              "event": "Viewed pricing"}]},
    ("api-ingest-track", "POST"): {"anonymousId": "visitor-1", "event": "Viewed pricing"},
    ("api-ingest-identify", "POST"): {"anonymousId": "visitor-1", "traits": {"plan": "pro"}},
    ("api-ingest-page", "POST"): {"anonymousId": "visitor-1", "name": "Pricing"},
    ("api-ingest-screen", "POST"): {"anonymousId": "visitor-1", "name": "Settings"},
    ("api-ingest-group", "POST"): {"anonymousId": "visitor-1", "groupId": "acme"},
    ("api-ingest-alias", "POST"): {"anonymousId": "visitor-1", "previousId": "visitor-0",
                                   "userId": "visitor-1"},
    ("api-segments", "POST"): {"name": "New", "kind": "dynamic",
                               "rules": {"type": "tag", "tag": TAG}},
    ("api-segment", "PATCH"): {"name": "Renamed"},
    ("api-segments-preview", "POST"): {"rules": {"type": "tag", "tag": TAG}},
    ("api-segment-members", "POST"): lambda world: {"people": [world.person.pk]},
    ("api-segment-snapshot", "POST"): {"name": "Snapshot"},
    ("api-topics", "POST"): {"key": "offers", "name": "Offers", "consent_text": "Deals."},
    ("api-topic", "PATCH"): {"name": "Monthly news"},
    ("api-person-subscriptions", "POST"): {"topic": "news", "subscribed": True},
    ("api-suppressions", "POST"): {"email": "gone@example.com"},
    ("api-suppressions-check", "POST"): {"email": "gone@example.com"},
    ("api-suppressions-remove", "POST"): {"email": "gone@example.com"},
    ("api-templates", "POST"): {"name": "Welcome", "kind": "html", "subject": "Hi",
                                "source": "<p>Hello {{ person.first_name }}</p>"},
    ("api-template", "PATCH"): {"subject": "Hello again"},
    ("api-template-preview", "POST"): lambda world: {"person": world.person.pk},
    ("api-sender-domains", "POST"): {"domain": "mail.acme.example"},
    ("api-broadcasts", "POST"): broadcast_payload,
    ("api-broadcast-schedule", "POST"): lambda world: {
        "send_at": (clock.now() + dt.timedelta(days=7)).isoformat()},
    ("api-sender-domain-throttle", "POST"): {"max_per_second": 5},
    ("api-webhooks", "POST"): {"url": "https://hooks.acme.example/new",
                               "event_types": ["person.created", "person.erased"]},
    ("api-webhook", "PATCH"): {"description": "CRM sync"},
    ("api-messages", "POST"): lambda world: {
        "template": templates(world)[0].pk, "sender": sender_domains(world)[0].pk,
        "from_local": "orders", "to": {"person": world.person.pk}},
}
# Headers an endpoint needs besides the key.
HEADERS = {("api-messages", "POST"): {"HTTP_IDEMPOTENCY_KEY": "generated-1"}}
SUCCESS = {("api-people", "POST"): 201, ("api-fields", "POST"): 201,
           ("api-person", "DELETE"): 204, ("api-events", "POST"): 202,
           ("api-segments", "POST"): 201, ("api-segment", "DELETE"): 204,
           ("api-segment-member", "DELETE"): 204, ("api-topics", "POST"): 201,
           ("api-segment-snapshot", "POST"): 201, ("api-templates", "POST"): 201,
           ("api-template", "DELETE"): 204, ("api-sender-domains", "POST"): 201,
           ("api-sender-domain", "DELETE"): 204,
           # A domain whose key waits for its record cannot be rotated yet.
           ("api-sender-domain-rotate", "POST"): 409,
           ("api-broadcasts", "POST"): 201, ("api-broadcast", "DELETE"): 204,
           # The world's sender domain is not verified; a draft is not queued.
           ("api-broadcast-queue", "POST"): 409, ("api-broadcast-cancel", "POST"): 409,
           ("api-broadcast-schedule", "POST"): 409, ("api-broadcast-pause", "POST"): 409,
           ("api-broadcast-resume", "POST"): 409,
           ("api-messages", "POST"): 409,
           ("api-webhooks", "POST"): 201, ("api-webhook", "DELETE"): 204}
# A template that shows every personal field (for the preview's visibility cases).
API_ENDPOINTS = endpoints.of_surface(endpoints.API)
CASES = [(way, role) for way in ("ceiling", "creator") for role in ROLES]


def _routes(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + str(entry.pattern), entry


def _methods_of(pattern: URLPattern) -> set[str] | None:
    view_class = getattr(pattern.callback, "view_class", None)
    if view_class is None:
        return None
    return {m.upper() for m in view_class.http_method_names
            if m not in ("options", "head") and hasattr(view_class, m)}


class TestRegistry:
    def test_every_route_and_method_under_the_api_prefixes_has_an_entry(self):
        missing = []
        for route, pattern in _routes(get_resolver().url_patterns):
            if not route.startswith(endpoints.API_PREFIX):
                continue
            methods = _methods_of(pattern) or {None}
            for method in methods:
                if (method is None and pattern.name not in endpoints.NAMES) or (
                        method and endpoints.lookup(pattern.name, method) is None):
                    missing.append(f"{method} {route} ({pattern.name})")
        assert not missing, f"add these to enclave/access/endpoints.py: {missing}"

    def test_every_entry_names_a_route_that_accepts_its_method(self):
        routes = {p.name: p for r, p in _routes(get_resolver().url_patterns)
                  if r.startswith(endpoints.API_PREFIX)}
        stale = [f"{e.method} {e.name}" for e in API_ENDPOINTS
                 if e.name not in routes or (_methods_of(routes[e.name]) is not None
                                             and e.method not in _methods_of(routes[e.name]))]
        assert not stale

    def test_every_scope_in_the_registry_is_a_known_scope(self):
        assert {e.scope for e in API_ENDPOINTS if e.scope} <= set(SCOPES)

    @pytest.mark.parametrize("endpoint", [e for e in API_ENDPOINTS if e.permission],
                             ids=lambda e: f"{e.method}:{e.name}")
    def test_the_scope_of_each_entry_grants_its_permission(self, endpoint):
        assert endpoint.permission in SCOPES[endpoint.scope]

    def test_every_authenticated_view_reads_its_scopes_from_the_registry(self):
        from enclave.api.base import ApiView

        for route, pattern in _routes(get_resolver().url_patterns):
            view_class = getattr(pattern.callback, "view_class", None)
            if route.startswith(endpoints.API_PREFIX) and view_class and issubclass(
                    view_class, ApiView):
                declared = {"required_scopes", "permission_classes"} & set(view_class.__dict__)
                assert not declared, route


def _id(value) -> str:
    return f"{value.method}:{value.name}" if isinstance(value, endpoints.Endpoint) \
        else str(value)


def key_for(world, way: str, role: str) -> tuple[ApiClient, frozenset[str], frozenset[str]]:
    """(client, key scopes, expected effective permissions) for one case."""
    if way == "ceiling":
        scopes = scopes_within(role)
        token, _ = make_key(world.account, world.members["owner"], scopes=scopes,
                            role_ceiling=role)
        perms = ROLE_PERMISSIONS["owner"] & ROLE_PERMISSIONS[role]
    else:
        holder = new_member(f"keyholder-{role}@acme.example", world.account, "owner")
        scopes = scopes_within("owner")
        token, _ = make_key(world.account, holder, scopes=scopes, role_ceiling="owner")
        Membership.objects.filter(member=holder).update(role=role)  # demoted after
        perms = ROLE_PERMISSIONS[role]
    return ApiClient(token), frozenset(scopes), perms & scope_permissions(scopes)


def prepare(world) -> None:
    """Give the person a tag and an audit row, each account an API key to revoke, a
    static list holding its person and a topic (as their owners, through the actions).
    Email templates and sender domains are made when a test first needs them
    (tests.messaging.world: compiling forks, a domain makes an RSA key)."""
    do_update_person(world.person, {"tags": [TAG]}, actor=world.actor("owner"))
    world.segment = do_create_segment(world.account, "Listed", "static",
                                      actor=world.actor("owner"))
    do_add_segment_people(world.segment, [world.person.pk], actor=world.actor("owner"))
    world.other_segment = do_create_segment(world.other, "Theirs", "static",
                                            actor=world.other_actor())
    do_add_segment_people(world.other_segment, [world.other_person.pk],
                          actor=world.other_actor())
    world.topic = do_create_topic(world.account, "news", "News", consent_text="News.",
                                  actor=world.actor("owner"))
    world.other_topic = do_create_topic(world.other, "news", "News", consent_text="News.",
                                        actor=world.other_actor())
    world.victim_key = make_key(world.account, world.members["admin"],
                                scopes=["people:read"], name="victim")[1]
    world.other_key = make_key(world.other, world.other_owner, scopes=["people:read"],
                               name="other tenant")[1]


def url_for(endpoint, world, *, other_tenant=False) -> str:
    kwargs: dict = {}
    if endpoint.target == "person" or endpoint.name == "api-person-tag":
        kwargs["person_id"] = (world.other_person if other_tenant else world.person).pk
    if endpoint.target == "membership":
        member = world.other_owner if other_tenant else world.members["user"]
        kwargs["membership_id"] = Membership.objects.get(member=member).pk
    if endpoint.name == "api-person-tag":
        kwargs["tag"] = TAG
    if endpoint.target == "api_key":
        kwargs["public_id"] = (world.other_key if other_tenant else world.victim_key).public_id
    if endpoint.target == "segment":
        kwargs["segment_id"] = (world.other_segment if other_tenant else world.segment).pk
    if endpoint.target == "topic":
        kwargs["topic_id"] = (world.other_topic if other_tenant else world.topic).pk
    if endpoint.target == "sender_domain":
        kwargs["domain_id"] = sender_domains(world)[1 if other_tenant else 0].pk
    if endpoint.target == "broadcast":
        kwargs["broadcast_id"] = broadcasts(world)[1 if other_tenant else 0].pk
    if endpoint.target == "template":
        kwargs["template_id"] = templates(world)[1 if other_tenant else 0].pk
    if endpoint.target == "message":
        kwargs["message_id"] = transactional_messages(world)[1 if other_tenant else 0].row_id
    if endpoint.name == "api-segment-member":
        kwargs["person_id"] = (world.other_person if other_tenant else world.person).pk
    if endpoint.target == "webhook":
        kwargs["webhook_id"] = webhook_endpoints(world)[1 if other_tenant else 0].pk
    if endpoint.name == "api-webhook-replay":
        kwargs["delivery_id"] = world.webhook_deliveries[1 if other_tenant else 0].pk
    return reverse(endpoint.name, kwargs=kwargs)


def payload_for(endpoint, world):
    payload = PAYLOADS.get((endpoint.name, endpoint.method))
    return payload(world) if callable(payload) else payload


def call(client, endpoint, url, world):
    payload = payload_for(endpoint, world)
    return client.generic(endpoint.method, url, json.dumps(payload) if payload else "",
                          **HEADERS.get((endpoint.name, endpoint.method), {}))


def expected_status(endpoint, scopes, perms) -> tuple[int, str | None]:
    if endpoint.scope is not None and endpoint.scope not in scopes:
        return 403, "insufficient-scope"
    if endpoint.permission is not None and endpoint.permission not in perms:
        return 403, "forbidden"
    return SUCCESS.get((endpoint.name, endpoint.method), 200), None


GENERATED = list(API_ENDPOINTS)


@pytest.mark.django_db
class TestStatusByRole:
    @pytest.mark.parametrize("endpoint", GENERATED, ids=_id)
    @pytest.mark.parametrize(("way", "role"), CASES, ids=[f"{w}-{r}" for w, r in CASES])
    def test_status_follows_scopes_and_the_permission_table(self, world, way, role, endpoint):
        prepare(world)
        client, scopes, perms = key_for(world, way, role)
        response = call(client, endpoint, url_for(endpoint, world), world)
        status, slug = expected_status(endpoint, scopes, perms)
        assert response.status_code == status, response.content[:500]
        if slug:
            assert response.json()["type"].endswith(f"/problems/{slug}")


# Every endpoint that takes a key (the public ones, health and the OpenAPI document, take
# none and answer anyone).
BROWSER_REFUSED = [e for e in GENERATED if not e.browser and e.scope is not None]


@pytest.mark.django_db
class TestBrowserKeys:
    """A browser key is public (it is in a website's pages): every endpoint but the
    tracking spec's refuses it, whatever its scope would allow."""

    @pytest.mark.parametrize("endpoint", BROWSER_REFUSED, ids=_id)
    def test_browser_key_is_refused_outside_the_tracking_calls(self, world, endpoint):
        prepare(world)
        token, _ = make_key(world.account, world.members["owner"], scopes=[],
                            kind="browser", allowed_origins=["https://www.shop.example"])
        response = call(ApiClient(token), endpoint, url_for(endpoint, world), world)
        assert response.status_code == 403, response.content[:500]
        assert response.json()["type"].endswith("/problems/insufficient-scope")

    def test_only_the_tracking_calls_take_browser_keys(self):
        assert {e.name for e in GENERATED if e.browser} == {
            f"api-ingest-{c}" for c in ("batch", "identify", "track", "page", "screen",
                                        "group", "alias")}


# Responses about the World's person: every personal field × every case.
PERSON_PAGES = [e for e in GENERATED if e.shows_people and not (
    e.name == "api-people" and e.method == "POST")]
VISIBILITY_CASES = [
    pytest.param(way, role, endpoint, field, id=f"{way}-{role}-{_id(endpoint)}-{field}")
    for way, role in CASES for endpoint in PERSON_PAGES for field in sorted(PERSON)
    # The audit log names a person by email only.
    if endpoint.name != "api-audit" or field == "email"
]


def _json_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def expected_level(endpoint, scopes, perms, field) -> str:
    if expected_status(endpoint, scopes, perms)[0] == 403:
        return visibility.HIDDEN
    return visibility.level(perms, visibility.FIELD_CLASSES[field])


@pytest.mark.django_db
class TestFieldVisibilityByRole:
    @pytest.mark.parametrize(("way", "role", "endpoint", "field"), VISIBILITY_CASES)
    def test_field_is_visible_masked_or_hidden_as_the_tables_say(self, world, way, role,
                                                                endpoint, field):
        prepare(world)
        client, scopes, perms = key_for(world, way, role)
        response = call(client, endpoint, url_for(endpoint, world), world)
        # The response itself first: an error would show no value at all, so "hidden" and
        # "masked" below mean nothing unless the endpoint answered as it should.
        assert response.status_code == expected_status(endpoint, scopes, perms)[0], \
            response.content[:500]
        text = response.content.decode()
        payload = payload_for(endpoint, world) or {}
        raw, masked = payload.get(field, PERSON[field]), MASKED.get(field)
        level = expected_level(endpoint, scopes, perms, field)
        if level == visibility.VISIBLE:
            assert _json_text(raw) in text
        else:
            assert raw not in text
            if masked:
                assert (_json_text(masked) in text) == (level == visibility.MASKED)
        if level == visibility.HIDDEN and response.status_code == 200:
            assert f'"{field}"' not in text


@pytest.mark.django_db
class TestCrossTenant:
    @pytest.mark.parametrize("endpoint", [e for e in GENERATED if e.target], ids=_id)
    def test_another_accounts_id_is_404_like_a_missing_one(self, world, endpoint):
        prepare(world)
        client, _, _ = key_for(world, "ceiling", "owner")
        other = call(client, endpoint, url_for(endpoint, world, other_tenant=True), world)
        url = url_for(endpoint, world)
        if endpoint.target == "api_key":
            missing_url = url.replace(world.victim_key.public_id, "000000000000")
        elif endpoint.target == "message":
            missing_url = url.replace(str(transactional_messages(world)[0].row_id),
                                      str(uuid.uuid4()))
        else:
            missing_url = re.sub(r"/\d+(/|$)", r"/999999\1", url, count=1)
        assert missing_url != url
        missing = call(client, endpoint, missing_url, world)
        assert other.status_code == missing.status_code == 404
        strip = ("trace_id", "instance")
        assert {k: v for k, v in other.json().items() if k not in strip} == \
            {k: v for k, v in missing.json().items() if k not in strip}

    def test_the_other_tenants_person_is_unchanged(self, world):
        prepare(world)
        client, _, _ = key_for(world, "ceiling", "owner")
        writes = [e for e in GENERATED if e.target and e.method != "GET"]
        statuses = {_id(e): call(client, e, url_for(e, world, other_tenant=True),
                                 world).status_code
                    for e in writes}
        assert statuses == {_id(e): 404 for e in writes}
        world.other_person.refresh_from_db()
        assert world.other_person.archived_at is None
        assert (world.other_person.email, world.other_person.company) == (
            "someone@other.example", "")
        assert not PersonTag.objects.filter(person=world.other_person).exists()
        world.other_key.refresh_from_db()
        assert world.other_key.revoked_at is None
        assert SenderDomain.objects.filter(pk=sender_domains(world)[1].pk).exists()
        assert Broadcast.objects.get(pk=broadcasts(world)[1].pk).state == "draft"
        theirs = WebhookEndpoint.objects.get(pk=webhook_endpoints(world)[1].pk)
        assert (theirs.state, theirs.description, theirs.previous_secret) == ("active", "",
                                                                              None)
        assert world.webhook_deliveries[1].__class__.objects.get(
            pk=world.webhook_deliveries[1].pk).state == "delivered"

    def test_the_same_writes_change_the_own_tenants_person(self, world):
        """The positive control of the test above: the same payloads do change the key's
        own account's person and key."""
        prepare(world)
        client, _, _ = key_for(world, "ceiling", "owner")
        for name, method in (("api-person", "PATCH"), ("api-person-tags", "POST"),
                             ("api-key-revoke", "POST")):
            endpoint = endpoints.lookup(name, method)
            assert call(client, endpoint, url_for(endpoint, world), world).status_code == 200
        world.person.refresh_from_db()
        world.victim_key.refresh_from_db()
        assert world.person.company == "Edited Co"
        assert PersonTag.objects.filter(person=world.person, tag__name="gold").exists()
        assert world.victim_key.revoked_at is not None
