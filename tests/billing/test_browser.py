"""The hand-off to Stripe in Chromium against a real ``enclave serve`` with billing on
(the fake Stripe as its API): an owner signs in, chooses a plan and lands on Stripe's
Checkout page — a navigation the strict CSP (``form-action 'self'``) lets through,
with no CSP violation on the way."""

from __future__ import annotations

import secrets
import sqlite3

import pytest
import stripe

from enclave.testing.live import run_enclave
from tests.billing.stripe_fixtures import plans_toml
from tests.identity.test_browser import CHROMIUM_ARGS
from tests.live_accounts import add_owner_account

EMAIL = "owner@shop.example"
PASSWORD = "a very long and unguessable passphrase 91"


def _with_password(live, email: str) -> None:
    from django.contrib.auth.hashers import Argon2PasswordHasher

    hashed = Argon2PasswordHasher().encode(PASSWORD, secrets.token_hex(8))
    db = sqlite3.connect(live.var_dir / "data" / "enclave.sqlite3", timeout=30)
    with db:
        db.execute("UPDATE identity_member SET password = ? WHERE email = ?", (hashed, email))
    db.close()


@pytest.mark.browser
def test_owner_reaches_stripe_checkout_through_the_strict_csp(tmp_path, fake_stripe):
    from playwright.sync_api import expect, sync_playwright

    key, webhook_secret = f"sk_test_{secrets.token_hex(12)}", f"whsec_{secrets.token_hex(16)}"
    (tmp_path / "stripe-key").write_text(key)
    (tmp_path / "stripe-webhook").write_text(webhook_secret)
    client = stripe.StripeClient(key, base_addresses={"api": fake_stripe.url})
    prices = [client.v1.plans.create(params={
        "id": f"{name}-{secrets.token_hex(4)}", "amount": 1000, "currency": "usd",
        "interval": "month", "product": {"name": name}}).id for name in ("team", "business")]
    (tmp_path / "plans.toml").write_text(plans_toml(*prices), encoding="utf-8")
    env = {"ENCLAVE_BILLING": "stripe",
           "ENCLAVE_STRIPE_SECRET_KEY_FILE": str(tmp_path / "stripe-key"),
           "ENCLAVE_STRIPE_WEBHOOK_SECRET_FILE": str(tmp_path / "stripe-webhook"),
           "ENCLAVE_STRIPE_API_BASE": fake_stripe.url,
           "ENCLAVE_PLANS_FILE": str(tmp_path / "plans.toml")}
    with run_enclave(tmp_path / "var", **env) as live, sync_playwright() as p:
        add_owner_account(live, EMAIL, "Shop")
        _with_password(live, EMAIL)
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            tab = browser.new_context(ignore_https_errors=True).new_page()
            csp_errors = []
            tab.on("console", lambda m: csp_errors.append(m.text)
                   if "Content Security Policy" in m.text else None)
            tab.goto(live.https_url + "/app/login/")
            tab.get_by_label("Email").fill(EMAIL)
            tab.get_by_label("Password").fill(PASSWORD)
            tab.get_by_role("button", name="Sign in").click()
            tab.wait_for_url(f"{live.https_url}/app/")
            tab.goto(live.https_url + "/app/billing/")
            tab.get_by_role("button", name="Subscribe to Team").click()
            tab.wait_for_url(f"{fake_stripe.url}/_config/pages/cs_test_*")
            expect(tab.get_by_role("heading")).to_contain_text("Fake Stripe page cs_test_")
            assert csp_errors == []
        finally:
            browser.close()
