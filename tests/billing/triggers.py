"""One trigger per billing audit type (800–899), for tests/core/test_audit.py. They run
against the fake Stripe (``billing`` fixture, tests/billing/stripe_fixtures.py)."""

from __future__ import annotations

import re

from enclave.core.models import AuditEventType
from tests.conftest import HttpsClient
from tests.people.world import World


def _checkout(f) -> tuple:
    billing, world = f["request"].getfixturevalue("billing"), World()
    response = world.client("owner").post("/app/billing/checkout/", {"plan": "team"})
    return billing, world, re.search(r"/_config/pages/(cs_test_\w+)", response.text).group(1)


def _portal(f):
    _, world, _ = _checkout(f)
    world.client("owner").post("/app/billing/portal/")


def _webhook(f):
    billing, _, session_id = _checkout(f)
    session = billing.complete_checkout(session_id)
    billing.post(HttpsClient(), billing.event("checkout.session.completed", session))


def _refused(f):
    billing = f["request"].getfixturevalue("billing")
    body = billing.event("invoice.paid", {"id": "in_1", "customer": "cus_1"})
    billing.post(HttpsClient(), body, billing.signed(body, secret="whsec_forged"))


TRIGGERS = {
    AuditEventType.BILLING_CHECKOUT_STARTED: _checkout,
    AuditEventType.BILLING_PORTAL_OPENED: _portal,
    AuditEventType.BILLING_WEBHOOK_RECEIVED: _webhook,
    AuditEventType.BILLING_SUBSCRIPTION_CHANGED: _webhook,
    AuditEventType.BILLING_WEBHOOK_REFUSED: _refused,
}
