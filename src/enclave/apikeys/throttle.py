"""Throttling API requests per key and per client IP, with named limits from settings.

``settings.ENCLAVE_API_RATES`` names the limits (``"api.key": "1200/min"``...), overridable
with ``ENCLAVE_API_RATES``. DRF views use the throttle classes (DRF answers 429
problem+json with Retry-After through the API exception handler); plain Django views
(the ingest hot path) call :func:`check` / :func:`throttle_response`.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from enclave.config import parse_rate
from enclave.core import audit, problems
from enclave.core.netaddr import in_networks

__all__ = ["ApiIpThrottle", "ApiKeyThrottle", "IngestIpThrottle", "IngestKeyThrottle",
           "RateLimited", "check", "count_failure", "hit", "refuse_if_failing",
           "throttle_response"]


class RateLimited(exceptions.Throttled):
    """429 ``rate-limited`` with ``wait`` seconds (→ Retry-After)."""

    problem_slug = "rate-limited"


def rate(name: str) -> tuple[int, int]:
    """(count, window seconds) of the named limit; KeyError when not configured."""
    return parse_rate(settings.ENCLAVE_API_RATES[name])


def _counter_key(name: str, ident: str) -> str:
    # Hash the identifier: Redis keys carry no addresses (personal data) or key ids.
    return f"{name}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def hit(name: str, ident: str):
    """Count one request for ``ident`` against limit ``name``; the Decision."""
    from enclave.apikeys.services import rate_limiter

    count, window = rate(name)
    return rate_limiter().hit(_counter_key(name, ident), count, window)


FAILURES = "api.auth_failures"


def refuse_if_failing(ip: str | None) -> None:
    """Before a key is looked up: an address that sent more than ``api.auth_failures``
    bad keys in the window gets 429 (no more guesses, no more lookups) until it ends."""
    from enclave.apikeys.services import _window, rate_limiter

    if not ip or ip_exempt(ip) or FAILURES not in settings.ENCLAVE_API_RATES:
        return
    count, window = rate(FAILURES)
    if rate_limiter().peek(_counter_key(FAILURES, f"ip:{ip}"), window) >= count:
        raise RateLimited(wait=_window(window)[1])


def count_failure(ip: str | None) -> None:
    """Count one refused key from ``ip`` against ``api.auth_failures``."""
    if ip and not ip_exempt(ip) and FAILURES in settings.ENCLAVE_API_RATES:
        hit(FAILURES, f"ip:{ip}")


def ip_exempt(ip: str) -> bool:
    """True for addresses in ``settings.API_RATE_EXEMPT_NETWORKS`` (per-IP limits skip)."""
    return in_networks(ip, tuple(settings.API_RATE_EXEMPT_NETWORKS))


def check(request: HttpRequest, principal=None, *, key_rate: str = "api.key",
          ip_rate: str = "api.ip") -> None:
    """Count the request per client IP and (when ``principal`` is given) per key.
    Raises :class:`RateLimited` when either limit is exceeded."""
    ip = audit.client_ip(request)
    waits = []
    if ip and ip_rate and not ip_exempt(ip):
        decision = hit(ip_rate, f"ip:{ip}")
        if not decision.allowed:
            waits.append(decision.retry_after)
    if principal is not None and key_rate:
        decision = hit(key_rate, f"key:{principal.public_id}")
        if not decision.allowed:
            waits.append(decision.retry_after)
    if waits:
        raise RateLimited(wait=max(waits))


def throttle_response(request: HttpRequest, principal=None, *, key_rate: str = "ingest.key",
                      ip_rate: str = "ingest.ip") -> HttpResponse | None:
    """For plain Django views: a 429 problem+json response with Retry-After when over a
    limit, else None (the request was counted)."""
    try:
        check(request, principal, key_rate=key_rate, ip_rate=ip_rate)
    except RateLimited as exc:
        wait = max(1, int(exc.wait or 1))
        return problems.problem_response(
            request, "rate-limited", f"Too many requests; retry in {wait} seconds.",
            headers={"Retry-After": str(wait)})
    return None


class _NamedThrottle(BaseThrottle):
    rate_name = ""

    def __init__(self) -> None:
        self._wait: int | None = None

    def ident_for(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident_for(request)
        if ident is None:
            return True
        decision = hit(self.rate_name, ident)
        self._wait = decision.retry_after
        return decision.allowed

    def wait(self) -> float | None:
        return self._wait


class _KeyThrottle(_NamedThrottle):
    def ident_for(self, request) -> str | None:
        public_id = getattr(request.auth, "public_id", None)
        return f"key:{public_id}" if public_id else None


class _IpThrottle(_NamedThrottle):
    def ident_for(self, request) -> str | None:
        ip = audit.client_ip(getattr(request, "_request", request))
        return f"ip:{ip}" if ip and not ip_exempt(ip) else None


class ApiKeyThrottle(_KeyThrottle):
    """Per API key, limit ``api.key``."""

    rate_name = "api.key"


class ApiIpThrottle(_IpThrottle):
    """Per client IP, limit ``api.ip``."""

    rate_name = "api.ip"


class IngestKeyThrottle(_KeyThrottle):
    """Per API key on ingest, limit ``ingest.key``."""

    rate_name = "ingest.key"


class IngestIpThrottle(_IpThrottle):
    """Per client IP on ingest, limit ``ingest.ip``."""

    rate_name = "ingest.ip"
