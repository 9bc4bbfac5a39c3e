"""Pluggable login-throttle stores: database (embedded), Redis (production), memory (tests).

A store keeps, per opaque key, the number of recent failures, the time of the last
failure and until when the key is blocked. All times come from :mod:`enclave.core.clock`
(Redis TTLs only garbage-collect), so the policy behaves the same in every store and tests
move the clock instead of waiting. Chosen by ``settings.THROTTLE_STORE``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger("enclave.identity")


@dataclass(frozen=True)
class Counter:
    failures: int
    last_failure_at: dt.datetime
    blocked_until: dt.datetime | None


class ThrottleStore(Protocol):
    def get(self, key: str) -> Counter | None: ...
    def put(self, key: str, counter: Counter, keep_seconds: int) -> None: ...
    def clear(self, key: str) -> None: ...
    def ping(self) -> str: ...


class MemoryThrottleStore:
    """In-process twin for unit tests."""

    def __init__(self) -> None:
        self.data: dict[str, Counter] = {}

    def get(self, key: str) -> Counter | None:
        return self.data.get(key)

    def put(self, key: str, counter: Counter, keep_seconds: int) -> None:
        self.data[key] = counter

    def clear(self, key: str) -> None:
        self.data.pop(key, None)

    def ping(self) -> str:
        return "memory store"


class DatabaseThrottleStore:
    """Counters in the ``identity_throttlecounter`` table (embedded mode)."""

    def get(self, key: str) -> Counter | None:
        from enclave.identity.models import ThrottleCounter

        row = ThrottleCounter.objects.filter(key=key).first()
        if row is None:
            return None
        return Counter(row.failures, row.last_failure_at, row.blocked_until)

    def put(self, key: str, counter: Counter, keep_seconds: int) -> None:
        from enclave.identity.models import ThrottleCounter

        with transaction.atomic():
            ThrottleCounter.objects.update_or_create(key=key, defaults={
                "failures": counter.failures, "last_failure_at": counter.last_failure_at,
                "blocked_until": counter.blocked_until})

    def clear(self, key: str) -> None:
        from enclave.identity.models import ThrottleCounter

        ThrottleCounter.objects.filter(key=key).delete()

    def ping(self) -> str:
        from enclave.identity.models import ThrottleCounter

        return f"database table ({ThrottleCounter.objects.count()} counters)"


class RedisThrottleStore:
    """Counters in Redis, shared by every app server (production).

    When Redis fails (unreachable, hung, or taking reads but refusing writes — a replica
    after a failover, memory full), every operation goes to the database table for
    :attr:`OUTAGE_SECONDS` (one log line per outage): still shared by every app server,
    so sign-in stays throttled and answers fast. Once Redis is back, a counter is the
    larger of its Redis and database values while counters from the outage may still be
    live, so an outage never hands out a fresh budget. Short socket timeouts: a hung
    Redis costs one sign-in a quarter second, then nothing until the outage ends. ``ping``
    still fails, so the AUTH-4 control reports the outage."""

    prefix = "enclave:throttle:"
    OUTAGE_SECONDS = 30.0
    TIMEOUT_SECONDS = 0.25

    def __init__(self, url: str | None = None) -> None:
        import redis

        self.client = redis.Redis.from_url(url or settings.CONFIG.redis_url,
                                           socket_timeout=self.TIMEOUT_SECONDS,
                                           socket_connect_timeout=self.TIMEOUT_SECONDS)
        self._fallback = DatabaseThrottleStore()
        self._down_until = 0.0
        self._merge_until = 0.0  # database counters from an outage may still be live

    def _redis_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, exc: Exception, keep_seconds: int = 86400) -> None:
        if not self._redis_down():
            logger.warning("throttle store: Redis unavailable (%s), counting in the "
                           "database for %d s", type(exc).__name__, self.OUTAGE_SECONDS)
        now = time.monotonic()
        self._down_until = now + self.OUTAGE_SECONDS
        self._merge_until = max(self._merge_until, now + keep_seconds)

    def get(self, key: str) -> Counter | None:
        import redis

        if self._redis_down():
            return self._fallback.get(key)
        try:
            raw = self.client.get(self.prefix + key)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._fallback.get(key)
        counter = None
        if raw is not None:
            data = json.loads(raw)
            blocked = data["blocked_until"]
            counter = Counter(data["failures"],
                              dt.datetime.fromisoformat(data["last_failure_at"]),
                              dt.datetime.fromisoformat(blocked) if blocked else None)
        if time.monotonic() < self._merge_until:
            counter = _larger(counter, self._fallback.get(key))
        return counter

    def put(self, key: str, counter: Counter, keep_seconds: int) -> None:
        import redis

        if not self._redis_down():
            value = json.dumps({
                "failures": counter.failures,
                "last_failure_at": counter.last_failure_at.isoformat(),
                "blocked_until": (counter.blocked_until.isoformat()
                                  if counter.blocked_until else None),
            })
            try:
                self.client.set(self.prefix + key, value, ex=max(keep_seconds, 1))
                return
            except redis.RedisError as exc:
                self._failed(exc, keep_seconds)
        self._merge_until = max(self._merge_until, time.monotonic() + keep_seconds)
        self._fallback.put(key, counter, keep_seconds)

    def clear(self, key: str) -> None:
        import redis

        if not self._redis_down():
            try:
                self.client.delete(self.prefix + key)
            except redis.RedisError as exc:
                self._failed(exc)
        if self._redis_down() or time.monotonic() < self._merge_until:
            self._fallback.clear(key)

    def ping(self) -> str:
        self.client.ping()
        return "redis"


def _larger(a: Counter | None, b: Counter | None) -> Counter | None:
    """The counter that limits more: more failures, and the later block."""
    if a is None or b is None:
        return a or b
    blocks = [t for t in (a.blocked_until, b.blocked_until) if t is not None]
    return Counter(max(a.failures, b.failures), max(a.last_failure_at, b.last_failure_at),
                   max(blocks) if blocks else None)


_store: ThrottleStore | None = None
_store_path: str | None = None


def throttle_store() -> ThrottleStore:
    """The configured store (one instance per process, rebuilt if the setting changes)."""
    global _store, _store_path
    if _store is None or _store_path != settings.THROTTLE_STORE:
        _store = import_string(settings.THROTTLE_STORE)()
        _store_path = settings.THROTTLE_STORE
    return _store
