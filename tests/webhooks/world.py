"""Webhook objects for the generated authorization tests: an endpoint per account, each
with one delivered delivery (replayable). Their ceiling is ``viewer``: rotating a secret
or moving an endpoint needs its ceiling's permissions besides ``webhooks.manage``
(tests/webhooks/test_webhooks.py), and the generated tests are about the latter."""

from __future__ import annotations

from enclave.webhooks.actions import do_create_webhook_endpoint
from enclave.webhooks.models import DELIVERED, WebhookDelivery


def webhook_endpoints(world) -> tuple:
    """(the world's account's, the other account's) endpoint, made on first use, each
    with one delivered delivery."""
    if not hasattr(world, "webhooks"):
        world.webhooks = (
            do_create_webhook_endpoint(world.account, url="https://hooks.acme.example/in",
                                       event_types=["person.created"],
                                       role_ceiling="viewer", actor=world.actor("owner"))[0],
            do_create_webhook_endpoint(world.other, url="https://hooks.other.example/in",
                                       event_types=["person.created"],
                                       role_ceiling="viewer", actor=world.other_actor())[0])
        world.webhook_deliveries = tuple(
            WebhookDelivery.objects.create(endpoint=e, event_type="person.created",
                                           message_id=f"msg_{n:032x}", payload="{}",
                                           state=DELIVERED)
            for n, e in enumerate(world.webhooks, start=1))
    return world.webhooks
