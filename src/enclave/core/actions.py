"""State changes owned by core. Each runs in one transaction with its audit row."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest

from enclave.core import audit, clock
from enclave.core.models import AuditEventType, ControlResult, CredentialExposure

# Where a credential can hide in a request: headers, cookies and query parameters.
CREDENTIAL_HEADERS = {"HTTP_AUTHORIZATION": "authorization", "HTTP_X_API_KEY": "api_key",
                      "HTTP_PROXY_AUTHORIZATION": "authorization"}
CREDENTIAL_COOKIE = re.compile(r"(session|csrf|token|auth)", re.IGNORECASE)
CREDENTIAL_QUERY = re.compile(r"^(api_?key|access_?token|token|key|password|secret)$",
                              re.IGNORECASE)
# Sent inside do_record_credential_exposure's transaction with ``request`` and ``found``
# ((kind, value) pairs), so apps that issue credentials can mark them exposed in the
# same transaction (enclave.apikeys revokes its keys). Receivers must not store values.
credential_exposed = Signal()


def credential_fingerprint(value: str) -> str:
    """Keyed hash of a credential: lets a later lookup say "this key was exposed"."""
    key = hashlib.sha256(b"enclave.credential-fingerprint:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def credentials_in_request(request: HttpRequest) -> list[tuple[str, str]]:
    """Return ``(kind, value)`` for every credential-looking part of the request."""
    found = [
        (kind, request.META[meta]) for meta, kind in CREDENTIAL_HEADERS.items()
        if request.META.get(meta)
    ]
    found += [("cookie", v) for k, v in request.COOKIES.items()
              if CREDENTIAL_COOKIE.search(k) and v]
    found += [("query", v) for k, v in request.GET.items() if CREDENTIAL_QUERY.match(k) and v]
    return found


def do_record_credential_exposure(request: HttpRequest, found: Iterable[tuple[str, str]]) -> int:
    """Record credentials that arrived over plain HTTP. System action (no actor).

    Stores the kind and a keyed fingerprint only. Returns the number of rows written.
    """
    found = list(found)
    rows = [
        CredentialExposure(
            kind=kind, fingerprint=credential_fingerprint(value), path=request.path[:512],
            ip=audit.client_ip(request),
        )
        for kind, value in found
    ]
    with transaction.atomic():
        CredentialExposure.objects.bulk_create(rows)
        credential_exposed.send(sender=CredentialExposure, request=request, found=found)
        audit.record(
            AuditEventType.CREDENTIAL_EXPOSED, request=request,
            extra={"kinds": sorted({r.kind for r in rows}), "path": request.path[:512]},
        )
    return len(rows)


def do_record_control_results(results: Iterable, *, actor=None) -> None:
    """Store the latest result of each control (system action, or an operator's CLI run)."""
    results = list(results)
    with transaction.atomic():
        for result in results:
            ControlResult.objects.update_or_create(
                control_id=result.control_id,
                defaults={
                    "status": result.status,
                    "evidence": result.evidence[:4000],
                    "public_summary": result.public[:300],
                    "checked_at": result.checked_at,
                },
            )
        audit.record(
            AuditEventType.CONTROLS_RECORDED, actor=actor,
            extra={"failed": sorted(r.control_id for r in results if r.status == "fail"),
                   "checked_at": clock.now().isoformat()},
        )
