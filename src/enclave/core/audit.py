"""Writing audit rows. Called only from actions, inside their transaction."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.netaddr import in_networks


def from_trusted_proxy(request: HttpRequest) -> bool:
    """True when ENCLAVE_BEHIND_PROXY is on and the socket peer is one of
    ENCLAVE_TRUSTED_PROXIES: only then do the edge's headers (``X-Real-IP`` here,
    ``X-Forwarded-Proto`` in core.middleware.ForwardedProtoMiddleware) count. Gunicorn
    leaves REMOTE_ADDR as the peer, so this is the one place that decides."""
    peer = request.META.get("REMOTE_ADDR") or ""
    cfg = settings.CONFIG
    return bool(peer) and cfg.behind_proxy and in_networks(peer, cfg.trusted_proxies)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address: the socket peer, or — from a trusted proxy
    (:func:`from_trusted_proxy`) — the ``X-Real-IP`` our nginx edge sets (it overwrites
    any value the client sent). Throttling, key allowlists, sessions and audit rows all
    use it."""
    if request is None:
        return None
    peer = request.META.get("REMOTE_ADDR") or None
    if peer and from_trusted_proxy(request):
        real = request.META.get("HTTP_X_REAL_IP", "").strip()
        try:
            return str(ipaddress.ip_address(real))
        except ValueError:
            return peer
    return peer


# Apps above core that act on what was audited, in the same transaction (webhooks: an
# event for each endpoint subscribed to it). ``listener(event)`` takes the new AuditEvent.
_LISTENERS: list = []


def add_listener(listener) -> None:
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def record(
    event_type: AuditEventType, *, actor=None, account_id: int | None = None,
    target_type: str = "", target_id: str | int = "", request: HttpRequest | None = None,
    extra: dict | None = None,
) -> AuditEvent:
    """Append one audit row. Must run inside the action's transaction (asserted).

    ``actor`` is the acting ``access.Principal`` (an API key is named by its public id as
    ``via_api_key``), a member acting before any principal exists (sign-in, sign-up), or
    ``None`` for the system. ``request`` only supplies the client address and trace id."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must run inside the action's transaction")
    event_type = AuditEventType(event_type)  # ValueError for an unknown type
    member = actor
    identify = getattr(actor, "audit_identity", None)
    if identify is not None:  # an access.Principal (core cannot import access)
        member, about_actor = identify()
        if about_actor:
            extra = {**(extra or {}), **about_actor}
    event = AuditEvent.objects.create(
        event_type=event_type,
        actor=member,
        account_id=account_id,
        target_type=target_type,
        target_id=str(target_id),
        ip=client_ip(request),
        trace_id=getattr(request, "trace_id", "") or "",
        extra_data=extra or {},
    )
    for listener in _LISTENERS:
        listener(event)
    return event
