"""Outgoing webhooks: endpoints and their rules, events queued in the audited action's
own transaction with payloads at the endpoint's ceiling, and deliveries to a real HTTP
receiver — signed per Standard Webhooks, in order per endpoint, retried, disabled when
the receiver is gone, never to an internal address."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from standardwebhooks import Webhook, WebhookVerificationError

from enclave.access.principal import NotAuthorized
from enclave.accounts.models import Membership
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people.actions import do_create_person, do_erase_person, do_update_person
from enclave.people.models import Person
from enclave.webhooks import actions, delivery, events
from enclave.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key
from tests.identity.helpers import mailing
from tests.people.world import MASKED, PERSON

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def endpoint_for(world, url="https://hooks.acme.example/in", *, role="owner", **kwargs):
    kwargs.setdefault("event_types", ["person.created", "person.updated", "person.erased"])
    return actions.do_create_webhook_endpoint(world.account, url=url,
                                              actor=world.actor(role), **kwargs)


def new_person(world, email="ann@example.net", **fields):
    return do_create_person(world.account, {"email": email, **fields},
                            actor=world.actor("owner"))


def change_the_worlds_person(world) -> None:
    """An update of the World's person, who holds every personal field (PERSON)."""
    do_update_person(world.person, {"country": "FR"}, actor=world.actor("owner"))


def ingest_events(world, body: dict, *, spec: bool = False) -> None:
    """Send ``body`` through ingest (native, or the tracking spec's batch call) with an
    events:write key of the world's owner."""
    token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
    path = "/api/ingest/v1/batch" if spec else "/api/v1/events"
    response = ApiClient(token).post(path, body)
    assert response.status_code == (200 if spec else 202), response.content


def payloads(endpoint) -> list[dict]:
    """Each queued delivery's request body as it would be sent now."""
    endpoint = WebhookEndpoint.objects.get(pk=endpoint.pk)
    return [json.loads(events.body(endpoint, d)) for d in
            WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk")]


@pytest.mark.django_db
class TestEndpoints:
    def test_an_endpoint_gets_a_secret_that_is_stored_sealed(self, world):
        endpoint, secret = endpoint_for(world)
        assert secret.startswith("whsec_")
        stored = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list(
            "secret", flat=True).get()
        assert secret not in str(stored)
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret

    @pytest.mark.parametrize("url", [
        "https://127.0.0.1/in", "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.7/in", "https://[::1]/in", "https://2130706433/in",
        "https://user:pass@hooks.acme.example/in", "ftp://hooks.acme.example/in"])
    def test_a_url_to_an_internal_address_or_not_https_is_refused(self, world, url):
        with pytest.raises(ValidationError) as refused:
            endpoint_for(world, url)
        assert "url" in refused.value.message_dict
        assert not WebhookEndpoint.objects.exists()

    def test_an_unknown_event_type_is_refused(self, world):
        with pytest.raises(ValidationError) as refused:
            endpoint_for(world, event_types=["person.created", "everything"])
        assert "everything" in refused.value.message_dict["event_types"][0]

    def test_the_ceiling_cannot_exceed_the_creators_own_permissions(self, world):
        with pytest.raises(ValidationError) as refused:
            endpoint_for(world, role="admin", role_ceiling="owner")
        assert "role_ceiling" in refused.value.message_dict

    @pytest.mark.parametrize("role", ["user", "analyst", "viewer"])
    def test_a_role_without_webhooks_manage_cannot_create_one(self, world, role):
        with pytest.raises(NotAuthorized):
            endpoint_for(world, role=role)

    def test_the_audit_row_never_holds_the_url_or_the_secret(self, world):
        _, secret = endpoint_for(world, "https://hooks.acme.example/in?token=s3cr3t")
        row = AuditEvent.objects.get(event_type=AuditEventType.WEBHOOK_ENDPOINT_CREATED)
        text = json.dumps(row.extra_data)
        assert "s3cr3t" not in text
        assert secret not in text


@pytest.mark.django_db
class TestEvents:
    def test_a_new_person_queues_one_delivery_for_each_subscribed_endpoint(self, world):
        subscribed, _ = endpoint_for(world)
        other, _ = endpoint_for(world, "https://crm.acme.example/in",
                                event_types=["person.erased"])
        person = new_person(world, first_name="Ann")
        assert [(p["type"], p["data"]["id"], p["data"]["first_name"])
                for p in payloads(subscribed)] == [("person.created", person.pk, "Ann")]
        assert payloads(other) == []

    def test_a_change_that_rolls_back_queues_nothing(self, world):
        endpoint, _ = endpoint_for(world)
        def request_that_fails_after_the_change():
            with transaction.atomic():
                new_person(world)
                raise RuntimeError("the rest of the request failed")

        with pytest.raises(RuntimeError):
            request_that_fails_after_the_change()
        assert payloads(endpoint) == []

    def test_an_update_names_the_fields_that_changed(self, world):
        endpoint, _ = endpoint_for(world)
        person = new_person(world)
        do_update_person(person, {"company": "Initech"}, actor=world.actor("owner"))
        update = payloads(endpoint)[1]
        assert (update["type"], update["data"]["changed"], update["data"]["company"]) == (
            "person.updated", ["company"], "Initech")

    def test_an_analyst_ceiling_gets_masked_values(self, world):
        endpoint, _ = endpoint_for(world, role_ceiling="analyst")
        change_the_worlds_person(world)
        data = payloads(endpoint)[0]["data"]
        assert (data["email"], data["first_name"]) == (MASKED["email"],
                                                       MASKED["first_name"])

    def test_a_viewer_ceiling_gets_ids_only(self, world):
        endpoint, _ = endpoint_for(world, role_ceiling="viewer")
        change_the_worlds_person(world)
        data = payloads(endpoint)[0]["data"]
        assert not set(PERSON.values()) & set(json.dumps(data).split('"'))
        assert data["id"] == world.person.pk

    def test_an_endpoint_whose_creator_left_shows_nothing_personal(self, world):
        endpoint, _ = endpoint_for(world, role="admin")
        change_the_worlds_person(world)
        Membership.objects.filter(member=world.members["admin"]).delete()
        assert PERSON["email"] not in json.dumps(payloads(endpoint))

    def test_erasure_deletes_what_was_queued_about_the_person_and_says_so_by_id(self,
                                                                               world):
        endpoint, _ = endpoint_for(world)
        person = new_person(world, "erase.me@example.net")
        do_erase_person(person, actor=world.actor("owner"))
        assert payloads(endpoint) == [
            {"type": "person.erased", "timestamp": payloads(endpoint)[0]["timestamp"],
             "data": {"id": person.pk}}]

    def test_ingest_queues_an_event_per_person_it_creates_and_changes(self, world):
        endpoint, _ = endpoint_for(world)
        person = new_person(world, "known@example.net")
        ingest_events(world, {"batch": [
            {"type": "identify", "email": "fresh@example.net"},
            {"type": "identify", "email": "known@example.net",
             "fields": {"company": "Initech"}},
            {"type": "track", "event": "Viewed pricing", "email": "known@example.net"}]})
        fresh = Person.objects.get(account=world.account, email="fresh@example.net")
        assert [(p["type"], p["data"]["id"], p["data"].get("changed"))
                for p in payloads(endpoint)[1:]] == [
            ("person.created", fresh.pk, None),
            ("person.updated", person.pk, ["company"])]

    def test_tracking_spec_ingest_queues_person_events_too(self, world):
        endpoint, _ = endpoint_for(world, event_types=["person.created"])
        ingest_events(world, {"batch": [{"type": "identify", "userId": "u-9",
                                         "traits": {"firstName": "Nia"}}]}, spec=True)
        assert [(p["type"], p["data"]["first_name"]) for p in payloads(endpoint)] == [
            ("person.created", "Nia")]

    def test_a_large_ingest_queues_one_pending_delivery_per_person_and_endpoint(self, world):
        created = [endpoint_for(world, f"https://hooks{i}.acme.example/in",
                                event_types=["person.created"])[0] for i in range(3)]
        updates_only, _ = endpoint_for(world, "https://crm.acme.example/in",
                                       event_types=["person.updated"])
        ingest_events(world, {"batch": [{"type": "identify", "userId": f"u{i}"}
                                        for i in range(50)]}, spec=True)
        rows = WebhookDelivery.objects.filter(endpoint__in=created)
        assert rows.count() == 150
        assert set(rows.values_list("state", "attempts", "event_type")) == {
            ("pending", 0, "person.created")}
        assert len(set(rows.values_list("message_id", flat=True))) == 150
        assert not WebhookDelivery.objects.filter(endpoint=updates_only).exists()
        assert deliverable_now(created[0]) == 50

    def test_ingest_that_changes_no_person_queues_nothing(self, world):
        endpoint, _ = endpoint_for(world)
        ingest_events(world, {"type": "track", "event": "Viewed pricing"})
        assert payloads(endpoint) == []

    def test_a_disabled_endpoint_gets_nothing(self, world):
        endpoint, _ = endpoint_for(world)
        actions.do_change_webhook_endpoint(endpoint, enabled=False,
                                           actor=world.actor("owner"))
        new_person(world)
        assert payloads(endpoint) == []


def deliverable_now(endpoint) -> int:
    """Deliveries of ``endpoint`` the worker would take now (pending and due)."""
    return WebhookDelivery.objects.filter(endpoint=endpoint, state="pending",
                                          next_attempt_at__lte=clock.now()).count()


def deliver_all():
    return delivery.run_once(threads=False)


@pytest.mark.django_db
class TestDelivery:
    def test_a_delivery_arrives_signed_and_verifies_with_the_library(self, world,
                                                                    receiver):
        _, secret = endpoint_for(world, receiver.url())
        person = new_person(world)
        assert deliver_all() == {"delivered": 1}
        (got,) = receiver.received
        assert Webhook(secret).verify(got.body, got.headers)["data"]["id"] == person.pk
        row = WebhookDelivery.objects.get()
        assert (row.state, row.attempts, row.last_status, got.headers["webhook-id"]) == (
            "delivered", 1, 200, row.message_id)

    def test_a_tampered_body_or_timestamp_fails_verification(self, world, receiver):
        _, secret = endpoint_for(world, receiver.url())
        new_person(world)
        deliver_all()
        (got,) = receiver.received
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(got.body.replace(b"ann@", b"eve@"), got.headers)
        old = {**got.headers,
               "webhook-timestamp": str(int(got.headers["webhook-timestamp"]) - 600)}
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(got.body, old)

    def test_one_endpoints_deliveries_arrive_in_order_and_a_failure_holds_the_rest(
            self, world, receiver):
        endpoint_for(world, receiver.url("/in"))
        receiver.answers["/in"] = (503, 0)
        with clock.frozen(NOW):
            first = new_person(world, "a@example.net")
            second = new_person(world, "b@example.net")
            assert deliver_all() == {"pending": 1}
            assert len(receiver.received) == 1  # the second waits behind the first
            receiver.answers["/in"] = (200, 0)
            assert deliver_all() == {}  # not before the first retry is due
            clock.advance(delivery.BACKOFF[0])
            assert deliver_all() == {"delivered": 2}
        ids = [json.loads(r.body)["data"]["id"] for r in receiver.received]
        assert ids == [first.pk, first.pk, second.pk]

    def test_every_attempt_of_a_delivery_has_the_same_webhook_id(self, world, receiver):
        endpoint_for(world, receiver.url("/in"))
        receiver.answers["/in"] = (500, 0)
        with clock.frozen(NOW):
            new_person(world)
            deliver_all()
            receiver.answers["/in"] = (200, 0)
            clock.advance(delivery.BACKOFF[0])
            deliver_all()
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
        assert len(receiver.received) == 2

    def test_a_redirect_is_not_followed_and_counts_as_a_failure(self, world, receiver):
        endpoint_for(world, receiver.url("/moved"))
        receiver.answers["/moved"] = (302, 0)
        new_person(world)
        assert deliver_all() == {"pending": 1}
        assert [r.path for r in receiver.received] == ["/moved"]
        assert WebhookDelivery.objects.get().last_status == 302

    def test_410_gone_disables_the_endpoint_and_tells_the_owner(self, world, receiver):
        from django.core import mail

        endpoint, _ = endpoint_for(world, receiver.url("/gone"))
        receiver.answers["/gone"] = (410, 0)
        new_person(world)
        with mailing():
            assert deliver_all() == {"failed": 1}
        endpoint.refresh_from_db()
        assert (endpoint.state, endpoint.disabled_reason) == (
            "disabled", "the receiver answered 410 Gone")
        assert [m.to for m in mail.outbox] == [["owner@acme.example"]]
        assert receiver.url("/gone") not in mail.outbox[0].body
        new_person(world, "later@example.net")
        assert WebhookDelivery.objects.count() == 1  # a disabled endpoint gets nothing

    def test_after_the_last_retry_the_delivery_fails_and_the_endpoint_is_disabled(
            self, world, receiver):
        endpoint, _ = endpoint_for(world, receiver.url("/down"))
        receiver.answers["/down"] = (500, 0)
        with clock.frozen(NOW):
            new_person(world)
            for wait in (dt.timedelta(0), *delivery.BACKOFF):
                clock.advance(wait)
                deliver_all()
        row = WebhookDelivery.objects.get()
        endpoint.refresh_from_db()
        assert (row.state, row.attempts) == ("failed", len(delivery.BACKOFF) + 1)
        assert endpoint.state == "disabled"
        assert sum(delivery.BACKOFF, dt.timedelta()) > dt.timedelta(days=2, hours=20)

    def test_a_name_that_resolves_to_an_internal_address_is_refused_when_called(
            self, world, receiver, settings):
        import dataclasses

        endpoint_for(world, f"http://localhost:{receiver.port}/in")  # a name: saved
        settings.CONFIG = dataclasses.replace(settings.CONFIG, outbound_allow=())
        new_person(world)
        assert deliver_all() == {"pending": 1}
        assert receiver.received == []
        assert "not allowed" in WebhookDelivery.objects.get().last_detail

    def test_during_a_rotation_both_secrets_sign(self, world, receiver):
        endpoint, old = endpoint_for(world, receiver.url())
        _, new = actions.do_rotate_webhook_secret(endpoint, actor=world.actor("owner"))
        new_person(world)
        deliver_all()
        (got,) = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(got.body, got.headers)
        Webhook(new).verify(got.body, got.headers)

    def test_after_the_overlap_only_the_new_secret_signs(self, world, receiver):
        endpoint, old = endpoint_for(world, receiver.url())
        _, new = actions.do_rotate_webhook_secret(endpoint, actor=world.actor("owner"))
        new_person(world)
        with clock.travel(actions.ROTATION_OVERLAP + dt.timedelta(seconds=1)):
            deliver_all()
        (got,) = receiver.received
        sent_at = dt.datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), dt.UTC)
        expected = {secret: Webhook(secret).sign(got.headers["webhook-id"], sent_at, got.body)
                    for secret in (old, new)}
        assert got.headers["webhook-signature"] == expected[new]

    def test_a_replay_sends_the_same_webhook_id_again(self, world, receiver):
        endpoint_for(world, receiver.url())
        new_person(world)
        deliver_all()
        actions.do_replay_webhook_delivery(WebhookDelivery.objects.get(),
                                           actor=world.actor("owner"))
        deliver_all()
        first, again = receiver.received
        assert first.headers["webhook-id"] == again.headers["webhook-id"]
        assert first.body == again.body

    def test_a_queued_delivery_cannot_be_replayed(self, world):
        endpoint_for(world)
        new_person(world)
        with pytest.raises(ValidationError):
            actions.do_replay_webhook_delivery(WebhookDelivery.objects.get(),
                                               actor=world.actor("owner"))

    def test_an_endpoint_claimed_by_one_worker_is_not_claimed_by_another(self, world):
        endpoint, _ = endpoint_for(world)
        new_person(world)
        assert [c.endpoint_id for c in delivery.claim()] == [endpoint.pk]
        assert delivery.claim() == []


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    def test_a_slow_endpoint_does_not_delay_another(self, receiver):
        from tests.people.world import World

        world = World()
        endpoint_for(world, receiver.url("/slow"))
        endpoint_for(world, receiver.url("/fast"))
        receiver.answers["/slow"] = (200, 1.5)
        new_person(world)
        import time

        started = time.monotonic()
        assert delivery.run_once() == {"delivered": 2}
        (fast,) = receiver.on("/fast")
        assert fast.at - started < 1.0
        assert time.monotonic() - started >= 1.5


@pytest.mark.django_db
class TestAttackerReview:
    """What an attacker's review of the first version found."""

    def test_lowering_the_ceiling_then_moving_and_replaying_never_sends_personal_data(
            self, world, receiver):
        from tests.api.conftest import key_client

        endpoint, _ = endpoint_for(world, "https://crm.acme.example/in", role="owner",
                                   role_ceiling="admin")
        change_the_worlds_person(world)
        delivery_id = WebhookDelivery.objects.get().pk
        WebhookDelivery.objects.update(state="delivered")
        narrow = key_client(world, ceiling="admin", scopes=[
            "webhooks:read", "webhooks:write", "segments:read", "email:read", "team:read"])
        base = f"/api/v1/webhooks/{endpoint.pk}"
        assert narrow.patch(base, {"role_ceiling": "viewer"}).status_code == 200
        assert narrow.patch(base, {"url": receiver.url("/attacker")}).status_code == 200
        assert narrow.post(f"{base}/deliveries/{delivery_id}/replay", {}).status_code == 200
        deliver_all()
        (got,) = receiver.on("/attacker")
        assert not set(PERSON.values()) & set(got.body.decode().split('"'))
        assert json.loads(got.body)["data"]["id"] == world.person.pk

    def test_endpoints_waiting_for_a_retry_never_starve_a_healthy_one(self, world,
                                                                      receiver):
        receiver.answers["/down"] = (503, 0)
        with clock.frozen(NOW):
            for n in range(delivery.ENDPOINTS_AT_ONCE + 1):
                endpoint_for(world, receiver.url("/down"), description=f"down {n}")
            new_person(world, "a@example.net")
            new_person(world, "b@example.net")  # queued behind each failing head
            deliver_all()  # every failing endpoint's head now waits for its retry
            endpoint_for(world, receiver.url("/up"))
            new_person(world, "c@example.net")
            deliver_all()
        assert len(receiver.on("/up")) == 1

    def test_no_attempt_starts_with_less_than_a_timeout_of_lease_left(self, world,
                                                                      receiver):
        endpoint_for(world, receiver.url())
        with clock.frozen(NOW):
            new_person(world)
            (claimed,) = delivery.claim()
            clock.advance(delivery.LEASE - dt.timedelta(seconds=delivery.TIMEOUT_SECONDS))
            assert delivery.deliver(claimed) == {}
            assert receiver.received == []
            clock.advance(dt.timedelta(seconds=delivery.TIMEOUT_SECONDS + 1))
            assert deliver_all() == {"delivered": 1}  # the lease ran out: claimed again

    def test_an_unexpected_error_counts_as_a_failed_attempt(self, world, receiver,
                                                            monkeypatch):
        endpoint_for(world, receiver.url())
        new_person(world)

        def broken(endpoint, delivery):
            raise RuntimeError("a sealed value no longer opens")

        monkeypatch.setattr(events, "body", broken)
        assert deliver_all() == {"pending": 1}
        row = WebhookDelivery.objects.get()
        assert (row.attempts, row.last_detail, row.last_status) == (1, "internal error", None)
        assert receiver.received == []

    def test_only_someone_holding_the_ceiling_may_rotate_the_secret(self, world):
        endpoint, secret = endpoint_for(world, role="owner", role_ceiling="owner")
        with pytest.raises(NotAuthorized):
            actions.do_rotate_webhook_secret(endpoint, actor=world.actor("admin"))
        assert WebhookEndpoint.objects.get().secret == secret

    def test_only_someone_holding_the_ceiling_may_move_the_endpoint(self, world):
        endpoint, _ = endpoint_for(world, role="owner", role_ceiling="owner")
        with pytest.raises(NotAuthorized):
            actions.do_change_webhook_endpoint(endpoint, url="https://x.example/in",
                                               actor=world.actor("admin"))
        assert WebhookEndpoint.objects.get().url == "https://hooks.acme.example/in"


@pytest.mark.django_db(transaction=True)
class TestSlots:
    def test_a_slow_endpoint_holds_one_slot_and_the_others_keep_moving(self, receiver):
        from tests.people.world import World

        world = World()
        endpoint_for(world, receiver.url("/slow"))
        endpoint_for(world, receiver.url("/a"))
        endpoint_for(world, receiver.url("/b"))
        receiver.answers["/slow"] = (200, 0.6)
        new_person(world, "one@example.net")
        new_person(world, "two@example.net")
        assert delivery.run_once(limit=2) == {"delivered": 6}
        slow_done = receiver.on("/slow")[-1].at
        assert max(r.at for r in receiver.on("/b")) < slow_done
