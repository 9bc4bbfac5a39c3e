"""Sign-in throttling: named limits with exponential back-off that always expires.

``settings.LOGIN_LIMITS`` names three limits, each ``"<failures>/<window>"``:

* ``per_member`` — wrong passwords for one email address (its canonical form,
  ``core.validation.canonical_email``), at login, re-authentication and password change
  alike. A correct password clears it. Keyed by the address, so unknown and known
  addresses are throttled identically (no enumeration).
* ``per_ip`` — wrong passwords and wrong second factors from one client address. Never
  cleared by a success (a sprayer's correct guess must not buy more guesses).
* ``mfa_per_member`` — wrong second factors (TOTP or recovery codes) for one member,
  wherever one is checked. Cleared only by a correct second factor, never by a correct
  password: knowing the password must not reset the count of code guesses.

After ``failures`` consecutive failures a key is blocked for 1 minute, then 2, 4, 8 ...
capped at the window. Refused attempts are not counted and do not look at the secret.
Failures are consecutive while each comes within one window of the previous failure or
of the end of the block it caused, so a patient attacker who waits out each block stays
at the longest back-off; one quiet window resets the count. An attacker can slow a victim
down but never lock them out for good.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass

from django.conf import settings

from enclave.core import clock
from enclave.core.validation import canonical_email
from enclave.identity.services import Counter, throttle_store

_LIMIT = re.compile(r"^(\d+)/(\d+)([smh])$")
_UNITS = {"s": 1, "m": 60, "h": 3600}
BACKOFF_BASE = dt.timedelta(minutes=1)
MAX_DOUBLINGS = 20  # 2**20 minutes: longer than any window
PER_MEMBER, PER_IP, MFA_PER_MEMBER = "per_member", "per_ip", "mfa_per_member"
REQUIRED_LIMITS = (PER_MEMBER, PER_IP, MFA_PER_MEMBER)


@dataclass(frozen=True)
class Limit:
    failures: int
    window: dt.timedelta


class Throttled(Exception):
    """An attempt refused because a limit is blocking; ``str()`` is safe to show (it says
    how long to wait, nothing about the secret). ``limits`` names the blocking limits."""

    def __init__(self, limits: dict[str, dt.datetime]) -> None:
        self.limits = sorted(limits)
        wait = max(limits.values()) - clock.now()
        self.retry_after = max(1, math.ceil(wait.total_seconds()))
        minutes = math.ceil(self.retry_after / 60)
        super().__init__(f"Too many attempts. Wait {minutes} minute{'s' * (minutes != 1)} "
                         "and try again.")


def parse_limit(text: str) -> Limit:
    """Parse ``"<failures>/<n><s|m|h>"``. Raises ValueError for anything else."""
    match = _LIMIT.match(text.strip())
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"login limit must look like '5/15m', got {text!r}")
    return Limit(int(match[1]), dt.timedelta(seconds=int(match[2]) * _UNITS[match[3]]))


def limits() -> dict[str, Limit]:
    return {name: parse_limit(value) for name, value in settings.LOGIN_LIMITS.items()}


def _key(scope: str, value: str) -> str:
    # Only a hash is stored: counters hold no address and no IP.
    return hashlib.sha256(f"login:{scope}:{value}".encode()).hexdigest()


def password_keys(email: str, ip: str | None) -> dict[str, str]:
    """The counters a password attempt for ``email`` from ``ip`` is checked against."""
    keys = {PER_MEMBER: _key(PER_MEMBER, canonical_email(email))}
    if ip:
        keys[PER_IP] = _key(PER_IP, ip)
    return keys


def second_factor_keys(member_id: int, ip: str | None) -> dict[str, str]:
    """The counters a second-factor attempt by member ``member_id`` is checked against."""
    keys = {MFA_PER_MEMBER: _key(MFA_PER_MEMBER, str(member_id))}
    if ip:
        keys[PER_IP] = _key(PER_IP, ip)
    return keys


def blocking(keys: dict[str, str]) -> dict[str, dt.datetime]:
    """The limits among ``keys`` blocking now, each with the end of its block."""
    now = clock.now()
    store = throttle_store()
    out = {}
    for scope, key in keys.items():
        counter = store.get(key)
        if counter and counter.blocked_until and counter.blocked_until > now:
            out[scope] = counter.blocked_until
    return out


def record_failures(keys: dict[str, str]) -> None:
    """Count one failed attempt against each limit in ``keys``; start or extend back-off."""
    now = clock.now()
    store = throttle_store()
    configured = limits()
    for scope, key in keys.items():
        limit = configured.get(scope)
        if limit is None:
            continue
        counter = store.get(key)
        failures = 1
        if counter:
            quiet_since = max(counter.last_failure_at,
                              counter.blocked_until or counter.last_failure_at)
            if now - quiet_since <= limit.window:
                failures = counter.failures + 1
        blocked_until = None
        if failures >= limit.failures:
            # The exponent is capped so a long siege cannot overflow the timedelta.
            doublings = min(failures - limit.failures, MAX_DOUBLINGS)
            blocked_until = now + min(limit.window, BACKOFF_BASE * 2 ** doublings)
        # Kept for the longest block plus one quiet window.
        store.put(key, Counter(failures, now, blocked_until),
                  keep_seconds=int(2 * limit.window.total_seconds()))


def clear(keys: dict[str, str], scope: str) -> None:
    """Forget the counter of ``scope`` in ``keys`` (a success on that limit)."""
    throttle_store().clear(keys[scope])


# --- passwords: the email as typed (canonical form) and the client's address ---

def blocked_scopes(email: str, ip: str | None) -> list[str]:
    """Names of the limits currently blocking password attempts for this email or IP."""
    return sorted(blocking(password_keys(email, ip)))


def record_failure(email: str, ip: str | None) -> None:
    """Count one wrong password for ``email`` from ``ip``."""
    record_failures(password_keys(email, ip))


def record_success(email: str) -> None:
    """A correct password clears the address's counter (the IP counter keeps counting,
    and the member's second-factor counter is untouched)."""
    clear(password_keys(email, None), PER_MEMBER)


# --- second factors: the member and the client's address ---

def second_factor_blocked_scopes(member_id: int, ip: str | None) -> list[str]:
    return sorted(blocking(second_factor_keys(member_id, ip)))


def record_second_factor_failure(member_id: int, ip: str | None) -> None:
    """Count one wrong TOTP or recovery code of member ``member_id`` from ``ip``."""
    record_failures(second_factor_keys(member_id, ip))


def record_second_factor_success(member_id: int) -> None:
    """A correct second factor — and nothing else — clears the member's code counter."""
    clear(second_factor_keys(member_id, None), MFA_PER_MEMBER)
