"""Stripe Checkout and the customer portal: owners are handed over to Stripe's own pages
(no card data ever reaches Enclave); Stripe unreachable changes nothing."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings as django_settings

from enclave.billing.models import BillingAccount
from enclave.core.models import AuditEvent, AuditEventType

pytestmark = pytest.mark.django_db


def _handoff_url(response) -> str:
    import re

    return re.search(r'id="stripe-link" href="([^"]+)"', response.text).group(1)


class TestCheckout:
    def test_owner_is_handed_over_to_the_checkout_page_stripe_made(self, billing, world):
        response = world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        assert response.status_code == 200
        url = _handoff_url(response)
        assert url.startswith(f"{billing.fake.url}/_config/pages/cs_test_")
        session = billing.client().v1.checkout.sessions.retrieve(url.rsplit("/", 1)[1])
        row = BillingAccount.objects.get(account=world.account)
        assert (session.customer, session.line_items[0]["price"], session.mode) == (
            row.customer_id, billing.team_price, "subscription")

    def test_handoff_page_navigates_to_stripe_without_a_form_post(self, billing, world):
        response = world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        url = _handoff_url(response)
        assert f'<meta http-equiv="refresh" content="0; url={url}">' in response.text
        # The strict CSP stays: a form may only post to this origin.
        assert "form-action 'self'" in response["Content-Security-Policy"]

    def test_checkout_start_is_audited_with_the_plan(self, billing, world):
        world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        event = AuditEvent.objects.get(event_type=AuditEventType.BILLING_CHECKOUT_STARTED)
        assert (event.account_id, event.extra_data["plan"]) == (world.account.pk, "team")

    def test_second_checkout_reuses_the_accounts_stripe_customer(self, billing, world):
        client = world.client("owner")
        sessions = [billing.client().v1.checkout.sessions.retrieve(_handoff_url(
            client.post("/app/billing/checkout/", {"plan": plan})).rsplit("/", 1)[1])
            for plan in ("team", "business")]
        row = BillingAccount.objects.get(account=world.account)
        assert [s.customer for s in sessions] == [row.customer_id, row.customer_id]

    @pytest.mark.parametrize("plan", ["free", "no-such-plan", ""])
    def test_plan_that_cannot_be_bought_is_refused_and_nothing_is_made(self, billing, world,
                                                                        plan):
        response = world.client("owner").post("/app/billing/checkout/", {"plan": plan})
        assert response.status_code == 422
        assert "Choose one of the plans offered." in response.text
        assert not BillingAccount.objects.exists()

    def test_subscribed_account_is_sent_to_the_portal_instead(self, billing, world):
        BillingAccount.objects.create(account=world.account, customer_id="cus_x",
                                      status="active", plan_key="team")
        response = world.client("owner").post("/app/billing/checkout/", {"plan": "business"})
        assert response.status_code == 409
        assert "customer portal" in response.text

    def test_a_new_checkout_closes_the_one_left_open_in_another_tab(self, billing, world):
        import requests

        client = world.client("owner")
        first = _handoff_url(client.post("/app/billing/checkout/", {"plan": "team"}))
        second = _handoff_url(client.post("/app/billing/checkout/", {"plan": "business"}))
        sessions = billing.client().v1.checkout.sessions
        assert [sessions.retrieve(url.rsplit("/", 1)[1]).status
                for url in (first, second)] == ["expired", "open"]
        with pytest.raises(requests.HTTPError):
            billing.complete_checkout(first.rsplit("/", 1)[1])

    def test_paid_checkout_whose_webhook_has_not_come_is_not_sold_twice(self, billing,
                                                                        world):
        client = world.client("owner")
        url = _handoff_url(client.post("/app/billing/checkout/", {"plan": "team"}))
        billing.complete_checkout(url.rsplit("/", 1)[1])  # paid; no webhook delivered
        response = client.post("/app/billing/checkout/", {"plan": "business"})
        assert response.status_code == 409
        assert "customer portal" in response.text
        row = BillingAccount.objects.get(account=world.account)
        assert (row.plan_key, row.status) == ("team", "active")

    def test_price_changed_in_stripe_before_the_plans_file_keeps_the_plan(self, billing,
                                                                          world, client):
        from tests.billing.test_webhooks import _checkout

        session = _checkout(billing, world)
        billing.post(client, billing.event("checkout.session.completed", session))
        plans = django_settings.CONFIG.plans_file
        plans.write_text(plans.read_text().replace(billing.team_price, "price_new_team"))
        billing.post(client, billing.event("invoice.paid", {
            "id": "in_2", "customer": session["customer"]}))
        row = BillingAccount.objects.get(account=world.account)
        assert (row.plan_key, row.price_id) == ("team", billing.team_price)
        from enclave.billing import entitlements

        assert entitlements.standing(world.account.pk).limit("people") == 10

    def test_return_from_checkout_shows_the_subscription_before_its_webhook(self, billing,
                                                                            world):
        client = world.client("owner")
        url = _handoff_url(client.post("/app/billing/checkout/", {"plan": "team"}))
        billing.complete_checkout(url.rsplit("/", 1)[1])
        response = client.get("/app/billing/?checkout=done")
        assert "Team — subscription active" in response.text
        assert BillingAccount.objects.get(account=world.account).plan_key == "team"

    def test_stripe_unreachable_is_a_clear_error_and_changes_nothing(self, billing, world,
                                                                     settings):
        import socket

        with socket.socket() as closed:  # a port nothing listens on
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
            settings.CONFIG = dataclasses.replace(django_settings.CONFIG,
                                                  stripe_api_base=f"http://127.0.0.1:{port}")
            response = world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        assert response.status_code == 503
        assert "Stripe could not be reached. Nothing was changed" in response.text
        assert not BillingAccount.objects.exists()
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.BILLING_CHECKOUT_STARTED).exists()

    def test_checkout_asks_for_a_recent_password(self, billing, world):
        import datetime as dt

        from enclave.core import clock

        client = world.client("owner")
        with clock.travel(dt.timedelta(minutes=11)):
            response = client.post("/app/billing/checkout/", {"plan": "team"})
        assert response.status_code == 302
        assert response["Location"].startswith("/app/reauth/")
        assert not BillingAccount.objects.exists()


class TestPortal:
    def test_customer_is_handed_over_to_the_portal(self, billing, world):
        world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        response = world.client("owner").post("/app/billing/portal/")
        assert response.status_code == 200
        assert _handoff_url(response).startswith(f"{billing.fake.url}/_config/pages/bps_")
        assert response["Cache-Control"] == "no-store"
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.BILLING_PORTAL_OPENED,
            account_id=world.account.pk).count() == 1

    def test_account_without_a_customer_is_told_to_choose_a_plan(self, billing, world):
        response = world.client("owner").post("/app/billing/portal/")
        assert response.status_code == 409
        assert "choose a plan first" in response.text


class TestBillingOff:
    def test_checkout_with_billing_off_says_so_and_asks_nothing_of_stripe(self, world):
        response = world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        assert response.status_code == 409
        assert "Billing is not turned on" in response.text
        assert not BillingAccount.objects.exists()

    def test_billing_page_with_billing_off_shows_usage_without_limits(self, world):
        response = world.client("owner").get("/app/billing/")
        assert response.status_code == 200
        assert "Billing is off on this deployment" in response.text
        assert "Unlimited" in response.text


class TestBillingPage:
    def test_page_shows_the_free_plans_usage_and_limits(self, billing, world):
        response = world.client("owner").get("/app/billing/")
        assert response.status_code == 200
        text = response.text
        assert "Free" in text
        # World: one person (limit 3); five members (limit 6).
        assert "<th scope=\"row\">People</th><td>1</td><td>3</td>" in text
        assert "<th scope=\"row\">Team members</th><td>5</td><td>6</td>" in text
        assert "Subscribe to Team" in text

    def test_page_lists_the_customers_invoices_from_stripe(self, billing, world):
        world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
        row = BillingAccount.objects.get(account=world.account)
        stripe = billing.client()
        card = stripe.v1.payment_methods.create(params={"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}})
        stripe.v1.payment_methods.attach(card.id, params={"customer": row.customer_id})
        stripe.v1.customers.update(row.customer_id, params={
            "invoice_settings": {"default_payment_method": card.id}})
        subscription = stripe.v1.subscriptions.create(params={
            "customer": row.customer_id, "items": [{"plan": billing.team_price}]})
        response = world.client("owner").get("/app/billing/")
        invoice = stripe.v1.invoices.retrieve(subscription.latest_invoice)
        assert invoice.id in response.text
        assert "49.00 USD" in response.text

    def test_page_says_so_when_stripe_cannot_list_invoices(self, billing, world, settings):
        BillingAccount.objects.create(account=world.account, customer_id="cus_gone")
        response = world.client("owner").get("/app/billing/")
        assert response.status_code == 200
        assert "Invoices could not be loaded from Stripe just now." in response.text

    def test_no_page_holds_a_card_field(self):
        from enclave.billing.controls import card_fields

        assert card_fields() == []
