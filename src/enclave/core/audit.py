"""Writing audit rows. Called only from actions, inside their transaction."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.netaddr import in_networks


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address: the socket peer, or — with ENCLAVE_BEHIND_PROXY and the peer one
    of ENCLAVE_TRUSTED_PROXIES — the ``X-Real-IP`` our nginx edge sets (it overwrites any
    value the client sent). Gunicorn leaves REMOTE_ADDR as the peer, so this is the one
    place that decides; throttling, key allowlists, sessions and audit rows all use it."""
    if request is None:
        return None
    peer = request.META.get("REMOTE_ADDR") or None
    cfg = settings.CONFIG
    if peer and cfg.behind_proxy and in_networks(peer, cfg.trusted_proxies):
        real = request.META.get("HTTP_X_REAL_IP", "").strip()
        try:
            return str(ipaddress.ip_address(real))
        except ValueError:
            return peer
    return peer


def record(
    event_type: AuditEventType, *, actor=None, account_id: int | None = None,
    target_type: str = "", target_id: str | int = "", request: HttpRequest | None = None,
    extra: dict | None = None,
) -> AuditEvent:
    """Append one audit row. Must run inside the action's transaction (asserted)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record() must run inside the action's transaction")
    event_type = AuditEventType(event_type)  # ValueError for an unknown type
    principal = getattr(request, "api_principal", None)
    if principal is not None:
        # Done through an API key (enclave.apikeys): name the key by its public id.
        extra = {**(extra or {}), "via_api_key": principal.public_id}
    return AuditEvent.objects.create(
        event_type=event_type,
        actor=actor,
        account_id=account_id,
        target_type=target_type,
        target_id=str(target_id),
        ip=client_ip(request),
        trace_id=getattr(request, "trace_id", "") or "",
        extra_data=extra or {},
    )
