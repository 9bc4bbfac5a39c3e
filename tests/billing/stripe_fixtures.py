"""Billing fixtures for any test (a pytest plugin of tests/conftest.py): a fake Stripe
(localstripe, tests/billing/fakestripe.py) on a local port for the session —
``fake_stripe`` — and billing turned on against it with keys made per test —
``billing``."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import stripe
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class FakeStripe:
    url: str
    process: subprocess.Popen


@pytest.fixture(scope="session")
def fake_stripe():
    process = subprocess.Popen([sys.executable, "-m", "tests.billing.fakestripe"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        pytest.fail(f"the fake Stripe server did not start (said {line!r})")
    yield FakeStripe(f"http://127.0.0.1:{int(line)}", process)
    process.terminate()
    process.wait(timeout=10)
    process.stdout.close()


@dataclasses.dataclass
class Billing:
    """Billing on against the fake: its keys, its prices, and helpers."""

    fake: FakeStripe
    key: str
    webhook_secret: str
    team_price: str
    business_price: str

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(self.key, base_addresses={"api": self.fake.url})

    def complete_checkout(self, session_id: str) -> dict:
        """The customer paying on the Checkout page: an active subscription."""
        response = requests.post(f"{self.fake.url}/_config/test/checkout/{session_id}/complete",
                                 timeout=10)
        response.raise_for_status()
        return response.json()

    def set_status(self, subscription_id: str, status: str) -> None:
        requests.post(f"{self.fake.url}/_config/test/subscriptions/{subscription_id}/status",
                      data={"status": status}, timeout=10).raise_for_status()

    def signed(self, body: str, *, at: int | None = None, secret: str | None = None
               ) -> str:
        """A ``Stripe-Signature`` header for ``body``: Stripe's scheme, HMAC-SHA256 of
        ``<timestamp>.<body>`` under the webhook secret."""
        at = int(time.time()) if at is None else at
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{at}.{body}".encode(),
                       hashlib.sha256).hexdigest()
        return f"t={at},v1={mac}"

    def event(self, event_type: str, obj: dict, *, event_id: str | None = None) -> str:
        return json.dumps({
            "id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event",
            "type": event_type, "created": int(time.time()), "livemode": False,
            "api_version": "2025-01-27.acacia", "data": {"object": obj}})

    def post(self, client, body: str, signature: str | None = None):
        headers = {} if signature == "" else {
            "HTTP_STRIPE_SIGNATURE": signature or self.signed(body)}
        return client.post("/webhooks/stripe/", data=body, content_type="application/json",
                           **headers)


def plans_toml(team_price: str, business_price: str) -> str:
    return f"""
[[plan]]
name = "Free"
price = "$0"
[plan.limits]
people = 3
members = 6
monthly_sends = 4

[[plan]]
name = "Team"
price = "$49"
stripe_price = "{team_price}"
[plan.limits]
people = 10
members = 8
monthly_sends = 50

[[plan]]
name = "Business"
price = "$199"
stripe_price = "{business_price}"
"""


@pytest.fixture
def billing(fake_stripe, settings, tmp_path) -> Billing:
    key = f"sk_test_{secrets.token_hex(12)}"
    webhook_secret = f"whsec_{secrets.token_hex(16)}"
    (tmp_path / "stripe-key").write_text(key)
    (tmp_path / "stripe-webhook").write_text(webhook_secret)
    client = stripe.StripeClient(key, base_addresses={"api": fake_stripe.url})
    prices = []
    for name, amount in (("Team", 4900), ("Business", 19900)):
        plan = client.v1.plans.create(params={
            "id": f"{name.lower()}-{secrets.token_hex(4)}", "amount": amount,
            "currency": "usd", "interval": "month", "product": {"name": name}})
        prices.append(plan.id)
    plans = tmp_path / "plans.toml"
    plans.write_text(plans_toml(*prices), encoding="utf-8")
    settings.CONFIG = dataclasses.replace(
        django_settings.CONFIG, billing="stripe", stripe_secret_key_file=tmp_path / "stripe-key",
        stripe_webhook_secret_file=tmp_path / "stripe-webhook",
        stripe_api_base=fake_stripe.url, plans_file=plans)
    return Billing(fake_stripe, key, webhook_secret, *prices)
