"""Throttling API requests per key and per client IP, with named limits from settings.

``settings.ENCLAVE_API_RATES`` names the limits (``"api.key": "1200/min"``...), overridable
with ``ENCLAVE_API_RATES``. DRF views use the throttle classes (DRF answers 429
problem+json with Retry-After through the API exception handler) — the ingest view
included (``api.events``, an ``ApiView`` with the ``ingest.*`` throttles).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from enclave.core import audit
from enclave.core.netaddr import in_networks
from enclave.core.ratelimit import counter_key, hit, rate

__all__ = ["ApiIpThrottle", "ApiKeyThrottle", "IngestIpThrottle", "IngestKeyThrottle",
           "RateLimited", "count_failure", "hit", "refuse_if_failing"]


class RateLimited(exceptions.Throttled):
    """429 ``rate-limited`` with ``wait`` seconds (→ Retry-After)."""

    problem_slug = "rate-limited"


FAILURES = "api.auth_failures"


def refuse_if_failing(ip: str | None) -> None:
    """Before a key is looked up: an address that sent more than ``api.auth_failures``
    bad keys in the window gets 429 (no more guesses, no more lookups) until it ends."""
    from enclave.core.ratelimit import _window, rate_limiter

    if not ip or ip_exempt(ip) or FAILURES not in settings.ENCLAVE_API_RATES:
        return
    count, window = rate(FAILURES)
    if rate_limiter().peek(counter_key(FAILURES, f"ip:{ip}"), window) >= count:
        raise RateLimited(wait=_window(window)[1])


def count_failure(ip: str | None) -> None:
    """Count one refused key from ``ip`` against ``api.auth_failures``."""
    if ip and not ip_exempt(ip) and FAILURES in settings.ENCLAVE_API_RATES:
        hit(FAILURES, f"ip:{ip}")


def ip_exempt(ip: str) -> bool:
    """True for addresses in ``settings.API_RATE_EXEMPT_NETWORKS`` (per-IP limits skip)."""
    return in_networks(ip, tuple(settings.API_RATE_EXEMPT_NETWORKS))


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
        principal = request.auth
        if principal is None or not principal.is_api_key:
            return None
        return f"key:{principal.api_key_public_id}"


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
