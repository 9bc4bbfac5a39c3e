"""Reading webhook endpoints and deliveries: always scoped to the principal's account
(Http404 — the same for another account's id as for none), ``webhooks.read`` to see,
``webhooks.manage`` to change. Never a secret: secrets are shown once, by the actions
that make them."""

from __future__ import annotations

from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.core.validation import id_or_404
from enclave.webhooks.models import WebhookDelivery, WebhookEndpoint

P = Permission


def endpoints_of(principal: Principal):
    authorize(principal, P.WEBHOOKS_READ)
    return WebhookEndpoint.objects.filter(account_id=principal.account_id).order_by("pk")


def access_endpoint(principal: Principal, endpoint_id, *,
                    for_write: bool = False) -> WebhookEndpoint:
    authorize(principal, P.WEBHOOKS_MANAGE if for_write else P.WEBHOOKS_READ)
    found = WebhookEndpoint.objects.filter(account_id=principal.account_id,
                                           pk=id_or_404(endpoint_id, "webhook")).first()
    if found is None:
        raise Http404("No such webhook.")
    return found


def deliveries_of(principal: Principal, endpoint: WebhookEndpoint):
    """The endpoint's deliveries, newest first."""
    authorize(principal, P.WEBHOOKS_READ, account_id=endpoint.account_id)
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-pk")


def access_delivery(principal: Principal, endpoint: WebhookEndpoint, delivery_id, *,
                    for_write: bool = False) -> WebhookDelivery:
    authorize(principal, P.WEBHOOKS_MANAGE if for_write else P.WEBHOOKS_READ,
              account_id=endpoint.account_id)
    found = WebhookDelivery.objects.filter(endpoint=endpoint,
                                           pk=id_or_404(delivery_id, "delivery")).first()
    if found is None:
        raise Http404("No such delivery.")
    found.endpoint = endpoint
    return found
