"""The project's one rate limiter: Redis (shared by every app server) or local (one
process), one protocol, and named limits counted on it (:func:`hit`).

Fixed windows: a named limit ``"1000/min"`` allows 1000 hits per key in each clock-aligned
60-second window. Window boundaries come from :mod:`enclave.core.clock` (Redis TTLs only
collect garbage), so both backends behave the same and tests move the clock instead of
sleeping. Chosen by ``settings.API_RATE_LIMITER``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from enclave.core import clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window ends (>= 1)


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int) -> Decision: ...
    def peek(self, key: str, window: int) -> int: ...


def _window(window: int) -> tuple[int, int]:
    """(index of the current window, whole seconds until it ends — at least 1)."""
    now = clock.now().timestamp()
    index = int(now // window)
    return index, max(1, math.ceil((index + 1) * window - now))


class LocalRateLimiter:
    """Counters in this process (the embedded single-process default, and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, limit: int, window: int) -> Decision:
        index, retry = _window(window)
        with self._lock:
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= index - 1}
            count = self._counts.get((f"{window}:{key}", index), 0) + 1
            self._counts[(f"{window}:{key}", index)] = count
        return Decision(count <= limit, count, limit, retry)

    def peek(self, key: str, window: int) -> int:
        """Hits of ``key`` in the current window (not counting this look)."""
        index, _ = _window(window)
        with self._lock:
            return self._counts.get((f"{window}:{key}", index), 0)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


# INCR and EXPIRE in one round trip, atomically (no counter without a TTL).
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisRateLimiter:
    """Counters in Redis, shared by every app server. If Redis cannot be reached the
    limiter falls back to a local one (logged) rather than failing the request."""

    def __init__(self, url: str | None = None, prefix: str = "enclave:rate:") -> None:
        import redis

        self.prefix = prefix
        self.client = redis.Redis.from_url(url or settings.CONFIG.redis_url,
                                           socket_timeout=1, socket_connect_timeout=1)
        self._script = self.client.register_script(_HIT)
        self._fallback = LocalRateLimiter()

    def hit(self, key: str, limit: int, window: int) -> Decision:
        import redis

        index, retry = _window(window)
        try:
            count = int(self._script(keys=[f"{self.prefix}{window}:{key}:{index}"],
                                     args=[window + 1]))
        except redis.RedisError as exc:
            logger.warning("rate limiter: Redis unavailable, limiting per process (%s)",
                           type(exc).__name__)
            return self._fallback.hit(key, limit, window)
        return Decision(count <= limit, count, limit, retry)

    def peek(self, key: str, window: int) -> int:
        import redis

        index, _ = _window(window)
        try:
            raw = self.client.get(f"{self.prefix}{window}:{key}:{index}")
        except redis.RedisError:
            return self._fallback.peek(key, window)
        return int(raw or 0)


_limiter: RateLimiter | None = None
_limiter_path: str | None = None


def rate_limiter() -> RateLimiter:
    """The configured limiter (one per process, rebuilt when the setting changes)."""
    global _limiter, _limiter_path
    if _limiter is None or _limiter_path != settings.API_RATE_LIMITER:
        _limiter = import_string(settings.API_RATE_LIMITER)()
        _limiter_path = settings.API_RATE_LIMITER
    return _limiter


def rate(name: str) -> tuple[int, int]:
    """(count, window seconds) of the named limit; KeyError when not configured."""
    from enclave.config import parse_rate

    return parse_rate(settings.ENCLAVE_API_RATES[name])


def counter_key(name: str, ident: str) -> str:
    # Hash the identifier: Redis keys carry no addresses (personal data) or key ids.
    return f"{name}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def hit(name: str, ident: str) -> Decision:
    """Count one hit for ``ident`` against the named limit ``name``; the Decision."""
    count, window = rate(name)
    return rate_limiter().hit(counter_key(name, ident), count, window)


class Limited(Exception):
    """Over a named limit (raised by :func:`require`): the API answers 429 with
    Retry-After, pages a 429 page, the CLI one line."""

    def __init__(self, name: str, retry_after: int) -> None:
        super().__init__(f"Too many requests; try again in {retry_after} seconds.")
        self.name, self.retry_after = name, retry_after


def require(name: str, ident: str) -> None:
    """Count one hit; raise :class:`Limited` when over the limit."""
    decision = hit(name, ident)
    if not decision.allowed:
        raise Limited(name, decision.retry_after)
