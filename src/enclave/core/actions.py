"""State changes owned by core. Each runs in one transaction with its audit row."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest

from enclave.core import audit, clock
from enclave.core.models import AuditEventType, ControlResult, CredentialExposure

# Where a credential can hide in a request, by name: headers, cookies and query parameters.
CREDENTIAL_HEADERS = {"HTTP_AUTHORIZATION": "authorization", "HTTP_X_API_KEY": "api_key",
                      "HTTP_PROXY_AUTHORIZATION": "authorization"}
CREDENTIAL_COOKIE = re.compile(r"(session|csrf|token|auth)", re.IGNORECASE)
CREDENTIAL_QUERY = re.compile(r"^(api_?key|access_?token|token|key|password|secret)$",
                              re.IGNORECASE)
# "Bearer <credential>": the credential is the part after the scheme, so the same key sent
# as a header and as a query parameter has one fingerprint.
AUTH_SCHEME = re.compile(r"^\s*[A-Za-z][\w.+-]*\s+(\S+)\s*$")
# At most this many exposure rows per request. Every credential found still reaches
# credential_exposed (revocation never depends on this cap or on the rate limits).
MAX_EXPOSURES_PER_REQUEST = 20
# A found credential is cut out of the stored path when it is at least this long (shorter
# values are no secret worth the mangling, e.g. "?key=1").
MIN_REDACTED_LENGTH = 8
# Sent inside do_record_credential_exposure's transaction with ``request`` and ``found``
# ((kind, value) pairs), so apps that issue credentials can mark them exposed in the
# same transaction (enclave.apikeys revokes its keys). Receivers must not store values.
credential_exposed = Signal()
# Functions text -> credentials found in it, registered by apps whose credentials identify
# themselves (enclave.apikeys: ``enc_<env>_...`` tokens): they find such a credential in
# any header, the query string or the path, not only in the places named above.
_credential_finders: list[Callable[[str], list[str]]] = []


def register_credential_finder(finder: Callable[[str], list[str]]) -> None:
    """Search every part of a plain-HTTP request with ``finder`` (idempotent)."""
    if finder not in _credential_finders:
        _credential_finders.append(finder)


def credential_fingerprint(value: str) -> str:
    """Keyed hash of a credential: lets a later lookup say "this key was exposed"."""
    key = hashlib.sha256(b"enclave.credential-fingerprint:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _places(request: HttpRequest) -> list[tuple[str, str, bool]]:
    """``(kind, text, named)`` for every part of the request a credential may be in;
    ``named`` parts (the credential places above) are credentials whatever they hold,
    the others only where a registered finder recognises one."""
    meta = request.META
    places = []
    for name, kind in CREDENTIAL_HEADERS.items():
        value = meta.get(name)
        if value:
            scheme = AUTH_SCHEME.match(value) if kind == "authorization" else None
            places.append((kind, scheme[1] if scheme else value, True))
    places += [("cookie", v, True) for k, v in request.COOKIES.items()
               if CREDENTIAL_COOKIE.search(k) and v]
    try:
        query = list(request.GET.items())
    except SuspiciousOperation:  # too many fields: the raw query string is still searched
        query = []
    places += [("query", v, True) for k, v in query if CREDENTIAL_QUERY.match(k) and v]
    places += [("header", v, False) for k, v in meta.items()
               if k.startswith("HTTP_") and k not in CREDENTIAL_HEADERS and isinstance(v, str)]
    raw_query = meta.get("QUERY_STRING", "")
    places += [("query", raw_query, False), ("query", unquote_plus(raw_query), False),
               ("path", request.path, False)]
    body = _small_body(request)
    if body:
        places.append(("body", body, False))
    return places


_BODY_SEARCHED = 512 * 1024


def _small_body(request: HttpRequest) -> str:
    """A plain, small request body as text (a key may be in one: the tracking spec's
    ``writeKey``); "" for none, a large one or a compressed one."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return ""
    if not 0 < length <= _BODY_SEARCHED or request.META.get(
            "HTTP_CONTENT_ENCODING", "").strip().lower() not in ("", "identity"):
        return ""
    try:
        return request.body.decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - an unreadable body holds nothing to find
        return ""


def credentials_in_request(request: HttpRequest) -> list[tuple[str, str]]:
    """``(kind, value)`` once for every distinct credential in the request (by
    fingerprint), in the order of :func:`_places`: named places first, then anything a
    registered finder recognises in any header, the query string or the path."""
    found, seen = [], set()
    for kind, text, named in _places(request):
        recognised = [c for finder in _credential_finders for c in finder(text)]
        for value in recognised or ([text] if named else []):
            fingerprint = credential_fingerprint(value)
            if fingerprint not in seen:
                seen.add(fingerprint)
                found.append((kind, value))
    return found


def path_without_credentials(path: str, values: Iterable[str]) -> str:
    """``path`` with every credential in ``values`` cut out: a key sent in the URL path
    must not be stored in the exposure row or the audit log that records it."""
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) >= MIN_REDACTED_LENGTH:
            path = path.replace(value, "[credential]")
    return path


def do_record_credential_exposure(request: HttpRequest, found: Iterable[tuple[str, str]], *,
                                  limited: bool = False) -> int:
    """Record credentials that arrived over plain HTTP. System action (no actor).

    Stores the kind and a keyed fingerprint only, one row per credential (at most
    MAX_EXPOSURES_PER_REQUEST) plus one audit row. ``limited`` (the edge's rate limit on
    recording is spent) writes no rows at all. Either way ``credential_exposed`` is sent
    with every credential, so a key sent in clear is revoked however busy the listener
    is. Returns the number of exposure rows written.
    """
    found = list(found)
    path = path_without_credentials(request.path, (v for _, v in found))[:512]
    ip = audit.client_ip(request)
    rows = [] if limited else [
        CredentialExposure(kind=kind, fingerprint=credential_fingerprint(value), path=path,
                           ip=ip)
        for kind, value in found[:MAX_EXPOSURES_PER_REQUEST]
    ]
    with transaction.atomic():
        if rows:
            CredentialExposure.objects.bulk_create(rows)
            audit.record(
                AuditEventType.CREDENTIAL_EXPOSED, request=request,
                extra={"kinds": sorted({r.kind for r in rows}), "path": path,
                       "credentials": len(found)},
            )
        credential_exposed.send(sender=CredentialExposure, request=request, found=found)
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
