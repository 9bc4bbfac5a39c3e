"""Login throttling: named limits per member and per client IP, exponential back-off.

``settings.LOGIN_LIMITS = {"per_member": "5/15m", "per_ip": "50/15m"}`` means: after 5
failures (each within 15 minutes of the previous one) further attempts for that email are
refused for 1 minute, then 2, 4, 8 ... capped at the window. Refused attempts are not
counted and a quiet window resets the count, so an attacker can slow a victim down but
never lock them out for good. The per-member key is the email as typed (lower-cased), so
unknown and known emails are throttled identically (no enumeration).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from django.conf import settings

from enclave.core import clock
from enclave.identity.services import Counter, throttle_store

_LIMIT = re.compile(r"^(\d+)/(\d+)([smh])$")
_UNITS = {"s": 1, "m": 60, "h": 3600}
BACKOFF_BASE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Limit:
    failures: int
    window: dt.timedelta


def parse_limit(text: str) -> Limit:
    """Parse ``"<failures>/<n><s|m|h>"``. Raises ValueError for anything else."""
    match = _LIMIT.match(text.strip())
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"login limit must look like '5/15m', got {text!r}")
    return Limit(int(match[1]), dt.timedelta(seconds=int(match[2]) * _UNITS[match[3]]))


def limits() -> dict[str, Limit]:
    return {name: parse_limit(value) for name, value in settings.LOGIN_LIMITS.items()}


def _key(scope: str, value: str) -> str:
    return hashlib.sha256(f"login:{scope}:{value}".encode()).hexdigest()


def _keys(email: str, ip: str | None) -> dict[str, str]:
    keys = {"per_member": _key("per_member", email.strip().lower())}
    if ip:
        keys["per_ip"] = _key("per_ip", ip)
    return keys


def blocked_scopes(email: str, ip: str | None) -> list[str]:
    """Names of the limits currently blocking this email or IP (empty when allowed)."""
    now = clock.now()
    store = throttle_store()
    out = []
    for scope, key in _keys(email, ip).items():
        counter = store.get(key)
        if counter and counter.blocked_until and counter.blocked_until > now:
            out.append(scope)
    return out


def record_failure(email: str, ip: str | None) -> None:
    """Count one failed attempt against each limit; start or extend back-off."""
    now = clock.now()
    store = throttle_store()
    configured = limits()
    for scope, key in _keys(email, ip).items():
        limit = configured.get(scope)
        if limit is None:
            continue
        counter = store.get(key)
        failures = 1
        if counter and now - counter.last_failure_at <= limit.window:
            failures = counter.failures + 1
        blocked_until = None
        if failures >= limit.failures:
            backoff = min(limit.window, BACKOFF_BASE * 2 ** (failures - limit.failures))
            blocked_until = now + backoff
        store.put(key, Counter(failures, now, blocked_until),
                  keep_seconds=int(2 * limit.window.total_seconds()))


def record_success(email: str) -> None:
    """A successful login clears the member's counter (the IP counter keeps counting)."""
    throttle_store().clear(_keys(email, None)["per_member"])
