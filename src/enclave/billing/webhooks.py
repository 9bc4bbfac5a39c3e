"""Stripe's webhook: ``POST /webhooks/stripe/`` (a 404 unless billing is on).

Requests are limited per client address (``billing.webhook``). The body must carry a
valid ``Stripe-Signature`` — the HMAC of the webhook signing secret over the timestamp
and the body, checked by the Stripe SDK, the timestamp at most 300 s old — and be a Stripe
event. A request that fails (forged: no or a wrong signature; stale: too old; malformed;
replayed: an event id already handled under the same signature timestamp) is a 400
with an audit row (``BILLING_WEBHOOK_REFUSED``: why — never anything from the body — at
most ``billing.webhook.refused`` a client address, beyond which refusals are only
logged) and changes nothing. A verified event goes to
:func:`enclave.billing.actions.do_handle_stripe_event`: once per event id; unknown types
are acknowledged and ignored; Stripe unreachable while reading the subscription → 503,
so Stripe delivers it again later.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import Http404, HttpResponse

from enclave.billing import entitlements, stripe_api
from enclave.billing.actions import do_handle_stripe_event
from enclave.core import audit, ratelimit
from enclave.core.models import AuditEventType

log = logging.getLogger(__name__)
MAX_BODY = 512 * 1024  # Stripe's events are a few kilobytes


def _text(status: int, text: str, **headers) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, headers=headers,
                        content_type="text/plain; charset=utf-8")


def _refused(request, why: str) -> HttpResponse:
    ip = audit.client_ip(request) or "unknown"
    if ratelimit.hit("billing.webhook.refused", ip).allowed:
        with transaction.atomic():
            audit.record(AuditEventType.BILLING_WEBHOOK_REFUSED, actor=None,
                         request=request, target_type="webhook", target_id="stripe",
                         extra={"why": why})
    else:
        log.warning("stripe webhook refused", extra={"why": why})
    return _text(400, f"Webhook refused: {why}.")


def _signed_at(header: str) -> int | None:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) < 12:
            return int(value)
    return None


def stripe_webhook(request):
    if not entitlements.billing_on():
        raise Http404("No such webhook.")
    if not ratelimit.hit("billing.webhook", audit.client_ip(request) or "unknown").allowed:
        return _text(429, "Too many requests.", **{"Retry-After": "60"})
    header = request.headers.get("Stripe-Signature", "")
    signed_at = _signed_at(header)
    if not header or signed_at is None:
        return _refused(request, "signature")
    if len(request.body) > MAX_BODY:
        return _refused(request, "malformed")
    try:
        event = stripe_api.construct_event(request.body, header)
        outcome = do_handle_stripe_event(event, signed_at=signed_at, request=request)
    except stripe_api.SignatureRefused as exc:
        return _refused(request, str(exc))
    except (KeyError, TypeError, ValueError):
        return _refused(request, "malformed")
    except stripe_api.StripeUnavailable:
        return _text(503, "Stripe could not be reached; deliver this event again later.",
                     **{"Retry-After": "60"})
    if outcome == "replayed":
        return _refused(request, "replayed")
    log.info("stripe webhook", extra={"outcome": outcome})
    return _text(200, outcome)
