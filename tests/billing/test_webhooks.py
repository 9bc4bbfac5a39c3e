"""Stripe's webhook: verified with the SDK, once per event id, state read from Stripe's
current subscription whatever order events arrive in; anything forged, stale, replayed
or malformed is a 400 with an audit row and changes nothing."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest
from django.conf import settings as django_settings

from enclave.billing.models import BillingAccount, StripeEvent
from enclave.core.models import AuditEvent, AuditEventType

pytestmark = pytest.mark.django_db

REFUSED = AuditEventType.BILLING_WEBHOOK_REFUSED


def _checkout(billing, world) -> dict:
    """An owner checks out the Team plan and pays on Stripe's page: the completed
    session (Stripe's object, as its webhook carries it)."""
    response = world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
    session_id = re.search(r"/_config/pages/(cs_test_\w+)", response.text).group(1)
    return billing.complete_checkout(session_id)


def _row(world) -> BillingAccount:
    return BillingAccount.objects.get(account=world.account)


class TestVerifiedEvents:
    def test_completed_checkout_puts_the_account_on_its_plan(self, billing, world, client):
        session = _checkout(billing, world)
        response = billing.post(client, billing.event("checkout.session.completed", session))
        assert (response.status_code, response.content) == (200, b"handled\n")
        row = _row(world)
        assert (row.plan_key, row.status, row.subscription_id) == (
            "team", "active", session["subscription"])
        assert row.current_period_end is not None

    def test_plan_change_is_audited_with_before_and_after(self, billing, world, client):
        session = _checkout(billing, world)
        billing.post(client, billing.event("checkout.session.completed", session))
        event = AuditEvent.objects.get(event_type=AuditEventType.BILLING_SUBSCRIPTION_CHANGED)
        assert event.extra_data == {"plan": "team", "status": "active", "previous_plan": "",
                                    "previous_status": ""}

    def test_event_is_handled_once_when_stripe_delivers_it_again(self, billing, world,
                                                                 client):
        session = _checkout(billing, world)
        body = billing.event("checkout.session.completed", session)
        first = billing.post(client, body, billing.signed(body, at=int(time.time()) - 5))
        again = billing.post(client, body, billing.signed(body))  # a retry, signed anew
        assert (first.content, again.status_code, again.content) == (
            b"handled\n", 200, b"duplicate\n")
        assert StripeEvent.objects.count() == 1
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.BILLING_WEBHOOK_RECEIVED).count() == 1

    def test_events_out_of_order_end_in_stripes_current_state(self, billing, world, client):
        session = _checkout(billing, world)
        subscription = billing.client().v1.subscriptions.retrieve(session["subscription"])
        billing.client().v1.subscriptions.cancel(subscription.id)
        # The cancellation's event arrives first, the creation's (an active snapshot) last.
        billing.post(client, billing.event("customer.subscription.deleted",
                                           {**subscription.to_dict(), "status": "canceled"}))
        billing.post(client, billing.event("customer.subscription.created",
                                           subscription.to_dict()))
        row = _row(world)
        assert (row.status, row.plan_key) == ("canceled", "team")

    def test_failed_renewal_marks_the_account_past_due(self, billing, world, client):
        session = _checkout(billing, world)
        billing.set_status(session["subscription"], "past_due")
        billing.post(client, billing.event("invoice.payment_failed",
                                           {"id": "in_1", "customer": session["customer"]}))
        row = _row(world)
        assert row.status == "past_due"
        assert row.past_due_since is not None

    def test_unknown_event_type_is_acknowledged_and_ignored(self, billing, world, client):
        body = billing.event("customer.tax_id.created", {"id": "txi_1", "customer": "cus_1"})
        response = billing.post(client, body)
        assert (response.status_code, response.content) == (200, b"ignored\n")
        assert not StripeEvent.objects.exists()

    def test_event_about_a_customer_no_account_has_changes_nothing(self, billing, world,
                                                                   client):
        body = billing.event("customer.subscription.updated",
                             {"id": "sub_x", "customer": "cus_someone_else"})
        response = billing.post(client, body)
        assert (response.status_code, response.content) == (200, b"unknown-customer\n")
        assert not BillingAccount.objects.exists()

    def test_stripe_unreachable_is_503_so_stripe_retries_and_nothing_is_recorded(
            self, billing, world, client, settings):
        session = _checkout(billing, world)
        settings.CONFIG = dataclasses.replace(django_settings.CONFIG,
                                              stripe_api_base="http://127.0.0.1:9")
        response = billing.post(client, billing.event("checkout.session.completed", session))
        assert response.status_code == 503
        assert response["Retry-After"] == "60"
        assert not StripeEvent.objects.exists()
        assert _row(world).status == ""


class TestRefusedDeliveries:
    @pytest.fixture
    def body(self, billing, world) -> str:
        return billing.event("checkout.session.completed", _checkout(billing, world))

    def _refused_with(self, response, why: str, *, handled_before: int = 0) -> None:
        assert (response.status_code, response.content) == (400, f"Webhook refused: {why}.\n"
                                                            .encode())
        event = AuditEvent.objects.get(event_type=REFUSED)
        assert event.extra_data == {"why": why}
        assert StripeEvent.objects.count() == handled_before

    def test_missing_signature_is_refused(self, billing, client, body):
        self._refused_with(billing.post(client, body, ""), "signature")

    def test_signature_made_with_another_secret_is_refused(self, billing, world, client,
                                                          body):
        response = billing.post(client, body, billing.signed(body, secret="whsec_forged"))
        self._refused_with(response, "signature")
        assert _row(world).status == ""

    def test_body_changed_after_signing_is_refused(self, billing, client, body):
        signature = billing.signed(body)
        tampered = body.replace('"livemode": false', '"livemode": true')
        self._refused_with(billing.post(client, tampered, signature), "signature")

    def test_signature_older_than_five_minutes_is_refused_as_stale(self, billing, client,
                                                                   body):
        response = billing.post(client, body, billing.signed(body, at=int(time.time()) - 301))
        self._refused_with(response, "stale signature")

    def test_captured_delivery_played_back_is_refused(self, billing, world, client, body):
        signature = billing.signed(body)
        assert billing.post(client, body, signature).status_code == 200
        self._refused_with(billing.post(client, body, signature), "replayed", handled_before=1)

    def test_signed_body_that_is_not_an_event_is_refused_as_malformed(self, billing, client,
                                                                      db):
        body = json.dumps([1, 2, 3])
        self._refused_with(billing.post(client, body), "malformed")

    def test_signed_body_that_is_not_json_is_refused_as_malformed(self, billing, client, db):
        body = "not json {"
        self._refused_with(billing.post(client, body), "malformed")

    def test_refusal_audit_rows_are_capped_per_address(self, billing, client, body):
        for _ in range(65):
            billing.post(client, body, billing.signed(body, secret="whsec_forged"))
        assert AuditEvent.objects.filter(event_type=REFUSED).count() == 60

    def test_webhook_is_not_served_with_billing_off(self, client, db):
        response = client.post("/webhooks/stripe/", data="{}", content_type="application/json",
                               HTTP_STRIPE_SIGNATURE="t=1,v1=00")
        assert response.status_code == 404
