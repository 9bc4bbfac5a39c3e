"""Webhook endpoint state changes — create, change (and re-enable), rotate the secret,
delete, replay a delivery — each one transaction with its audit row, and the delivery
engine's own (system) change: disabling an endpoint that keeps failing. Audit rows name
endpoints and deliveries by id and say which fields changed: never the URL (its path or
query may carry a token of the receiver's) nor a secret.

A URL is checked when it is saved (``core.outbound.check_url``: https only, no
credentials, no internal address written as an IP) and again, with its resolved
addresses, every time it is called.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction

from enclave.access.permissions import Permission
from enclave.access.principal import NotAuthorized, Principal, authorize
from enclave.access.scopes import ceiling_permissions
from enclave.apikeys.actions import clean_ceiling, default_ceiling
from enclave.core import audit, clock, outbound
from enclave.core.models import AuditEventType
from enclave.webhooks import events, signing
from enclave.webhooks.models import (
    ACTIVE,
    DISABLED,
    PENDING,
    WebhookDelivery,
    WebhookEndpoint,
)

P = Permission
MAX_ENDPOINTS = 20
MAX_DESCRIPTION = 200
# After a rotation the old secret keeps signing (a second signature) this long, so the
# receiver can switch over without refusing a request.
ROTATION_OVERLAP = dt.timedelta(hours=24)


def _require_ceiling(endpoint: WebhookEndpoint, actor: Principal, doing: str) -> None:
    """Pointing an endpoint elsewhere sends its payloads there, and its secret lets one
    forge requests to its receiver: only someone who may see what it sends (every
    permission of its ceiling) may do either."""
    if not ceiling_permissions(endpoint.role_ceiling) <= actor.perms:
        raise NotAuthorized(f"{doing} needs every permission of its role ceiling "
                            f"({endpoint.role_ceiling}).")


def clean_url(url) -> str:
    try:
        return outbound.check_url(str(url or "").strip())
    except outbound.Refused as exc:
        raise ValidationError({"url": f"This URL cannot be used: {exc.reason}."}) from None


def clean_event_types(values) -> list[str]:
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise ValidationError({"event_types": "A list of event types."})
    unknown = [str(v)[:64] for v in values if v not in events.TYPES]
    if unknown:
        raise ValidationError({"event_types": f"Unknown event type(s): {', '.join(unknown)}. "
                                              f"Known: {', '.join(events.TYPES)}."})
    if not values:
        raise ValidationError({"event_types": "Choose at least one event type."})
    return sorted(set(values))


def clean_description(value) -> str:
    text = " ".join(str(value or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise ValidationError({"description": f"At most {MAX_DESCRIPTION} characters."})
    return text


def do_create_webhook_endpoint(account, *, url, event_types, role_ceiling=None,
                               description="", actor: Principal,
                               request=None) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint and its signing secret (shown this once). Needs
    ``webhooks.manage``. The role ceiling (default: the largest built-in role the actor's
    permissions cover) cannot exceed what the actor — a member, or an API key within its
    scopes — may see; payloads then follow the ceiling and the creating member's
    permissions at the time of each event."""
    authorize(actor, P.WEBHOOKS_MANAGE, account_id=account.pk)
    url = clean_url(url)
    kinds = clean_event_types(event_types)
    ceiling = clean_ceiling(role_ceiling or default_ceiling(actor.perms), actor.perms)
    text = clean_description(description)
    secret, now = signing.new_secret(), clock.now()
    with transaction.atomic():
        # The account row is the lock: two creations at once cannot both pass the count.
        type(account).objects.select_for_update().filter(pk=account.pk).exists()
        if WebhookEndpoint.objects.filter(account=account).count() >= MAX_ENDPOINTS:
            raise ValidationError({"url": f"At most {MAX_ENDPOINTS} webhook endpoints."})
        endpoint = WebhookEndpoint(account=account, url=url, event_types=kinds,
                                   role_ceiling=ceiling, description=text,
                                   created_by=actor.member, created_at=now, updated_at=now)
        endpoint.secret = secret
        endpoint.save()
        audit.record(AuditEventType.WEBHOOK_ENDPOINT_CREATED, actor=actor,
                     account_id=account.pk, request=request, target_type="webhook",
                     target_id=endpoint.pk,
                     extra={"event_types": kinds, "role_ceiling": ceiling})
    return endpoint, secret


def do_change_webhook_endpoint(endpoint: WebhookEndpoint, *, actor: Principal, request=None,
                               url=None, event_types=None, role_ceiling=None,
                               description=None, enabled: bool | None = None
                               ) -> WebhookEndpoint:
    """Change the given settings; ``enabled=True`` re-enables a disabled endpoint (its
    failed deliveries stay failed: replay the ones wanted). A ceiling can be set no
    higher than the actor's own permissions, and the URL changed only by someone holding
    every permission of the endpoint's ceiling (else its payloads could be sent to a
    receiver of their choosing); no change, no audit row."""
    authorize(actor, P.WEBHOOKS_MANAGE, account_id=endpoint.account_id)
    changes: dict = {}
    if url is not None:
        changes["url"] = clean_url(url)
    if event_types is not None:
        changes["event_types"] = clean_event_types(event_types)
    if description is not None:
        changes["description"] = clean_description(description)
    if role_ceiling is not None:
        changes["role_ceiling"] = clean_ceiling(role_ceiling, actor.perms)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if "url" in changes and changes["url"] != locked.url:
            _require_ceiling(locked, actor, "Changing where this endpoint sends")
        changed = sorted(k for k, v in changes.items() if getattr(locked, k) != v)
        for name in changed:
            setattr(locked, name, changes[name])
        if enabled is not None and (locked.state == ACTIVE) != enabled:
            locked.state = ACTIVE if enabled else DISABLED
            locked.disabled_reason = "" if enabled else "disabled by a member"
            changed.append("state")
        if not changed:
            return locked
        locked.updated_at = clock.now()
        locked.save()
        audit.record(AuditEventType.WEBHOOK_ENDPOINT_CHANGED, actor=actor,
                     account_id=locked.account_id, request=request, target_type="webhook",
                     target_id=locked.pk, extra={"fields": changed, "state": locked.state})
    return locked


def do_rotate_webhook_secret(endpoint: WebhookEndpoint, *, actor: Principal,
                             request=None) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (shown this once); the old one signs too for
    ``ROTATION_OVERLAP``."""
    authorize(actor, P.WEBHOOKS_MANAGE, account_id=endpoint.account_id)
    secret, now = signing.new_secret(), clock.now()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        _require_ceiling(locked, actor, "Rotating this endpoint's secret")
        locked.previous_secret = locked.secret
        locked.previous_until = now + ROTATION_OVERLAP
        locked.secret = secret
        locked.updated_at = now
        locked.save()
        audit.record(AuditEventType.WEBHOOK_SECRET_ROTATED, actor=actor,
                     account_id=locked.account_id, request=request, target_type="webhook",
                     target_id=locked.pk,
                     extra={"previous_until": locked.previous_until.isoformat()})
    return locked, secret


def do_delete_webhook_endpoint(endpoint: WebhookEndpoint, *, actor: Principal,
                               request=None) -> None:
    """Delete the endpoint and its delivery log (what was not delivered is dropped)."""
    authorize(actor, P.WEBHOOKS_MANAGE, account_id=endpoint.account_id)
    with transaction.atomic():
        dropped = WebhookDelivery.objects.filter(endpoint=endpoint, state=PENDING).count()
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
        audit.record(AuditEventType.WEBHOOK_ENDPOINT_DELETED, actor=actor,
                     account_id=endpoint.account_id, request=request,
                     target_type="webhook", target_id=endpoint.pk,
                     extra={"undelivered_dropped": dropped})


def do_replay_webhook_delivery(delivery: WebhookDelivery, *, actor: Principal,
                               request=None) -> WebhookDelivery:
    """Send a delivery again, with the same ``webhook-id`` (the receiver may drop it as
    a duplicate) and a new timestamp and signature; it joins its endpoint's queue in
    its original place, with a fresh retry schedule."""
    authorize(actor, P.WEBHOOKS_MANAGE, account_id=delivery.endpoint.account_id)
    now = clock.now()
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if locked.state == PENDING:
            raise ValidationError({"delivery": "This delivery is still queued."})
        locked.state, locked.attempts, locked.next_attempt_at = PENDING, 0, now
        locked.save(update_fields=["state", "attempts", "next_attempt_at"])
        audit.record(AuditEventType.WEBHOOK_DELIVERY_REPLAYED, actor=actor,
                     account_id=delivery.endpoint.account_id, request=request,
                     target_type="webhook", target_id=delivery.endpoint_id,
                     extra={"delivery": locked.pk})
    return locked


def disable_failing(endpoint_id: int, reason: str) -> bool:
    """The system disables an endpoint that answered 410 Gone or failed every retry of a
    delivery; its owners are told by email. Whether it was active until now."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id,
                                                                    state=ACTIVE).first()
        if locked is None:
            return False
        locked.state, locked.disabled_reason = DISABLED, reason[:200]
        locked.updated_at = clock.now()
        locked.save(update_fields=["state", "disabled_reason", "updated_at"])
        audit.record(AuditEventType.WEBHOOK_ENDPOINT_DISABLED, actor=None,
                     account_id=locked.account_id, target_type="webhook",
                     target_id=locked.pk, extra={"reason": reason[:200]})
        _notify_owners(locked)
    return True


def _notify_owners(endpoint: WebhookEndpoint) -> None:
    from enclave.core import mail

    mail.enqueue("enclave.webhooks.notify_disabled", endpoint_id=endpoint.pk)

