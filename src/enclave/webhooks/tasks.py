"""The webhook worker jobs. Takes "now" from enclave.core.clock."""

from __future__ import annotations

import time

from celery import shared_task

from enclave.webhooks import delivery

BUDGET_SECONDS = 20.0  # then the job ends; the schedule starts the next one


@shared_task(name="enclave.webhooks.deliver")
def deliver_webhooks() -> dict[str, int]:
    """Deliver due webhook deliveries until none is due or the time budget is spent
    (turns already started end on their own). Several workers may run it at once:
    endpoint claims never overlap."""
    return delivery.run_once(until=time.monotonic() + BUDGET_SECONDS)


@shared_task(name="enclave.webhooks.notify_disabled")
def notify_disabled(endpoint_id: int) -> int:
    """Tell the account's owners that an endpoint was disabled (no URL in the mail: it
    may carry the receiver's token); how many were told."""
    from django.conf import settings

    from enclave.accounts.models import Membership
    from enclave.core import mail
    from enclave.webhooks.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0
    owners = list(Membership.objects.filter(account_id=endpoint.account_id, role="owner")
                  .values_list("member__email", flat=True))
    body = (f"Enclave stopped sending to webhook endpoint {endpoint.pk} "
            f"({endpoint.description or 'no description'}): {endpoint.disabled_reason}.\n\n"
            f"Fix the receiver, then enable the endpoint again and replay what it missed:\n"
            f"{settings.CONFIG.public_url}/api/v1/webhooks/{endpoint.pk}\n")
    for address in owners:
        mail.send(address, "A webhook endpoint was disabled", body)
    return len(owners)
