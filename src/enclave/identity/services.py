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
    """Counters in Redis, shared by every app server (production). When Redis cannot be
    reached, counters go to the database table instead (logged): still shared by every
    app server, so sign-in stays throttled and answers while Redis is down. ``ping``
    still fails, so the AUTH-4 control reports the outage."""

    prefix = "enclave:throttle:"

    def __init__(self, url: str | None = None) -> None:
        import redis

        self.client = redis.Redis.from_url(url or settings.CONFIG.redis_url,
                                           socket_timeout=2, socket_connect_timeout=2)
        self._fallback = DatabaseThrottleStore()

    def _down(self, exc: Exception) -> None:
        logger.warning("throttle store: Redis unavailable (%s), counting in the database",
                       type(exc).__name__)

    def get(self, key: str) -> Counter | None:
        import redis

        try:
            raw = self.client.get(self.prefix + key)
        except redis.RedisError as exc:
            self._down(exc)
            return self._fallback.get(key)
        if raw is None:
            return None
        data = json.loads(raw)
        blocked = data["blocked_until"]
        return Counter(data["failures"], dt.datetime.fromisoformat(data["last_failure_at"]),
                       dt.datetime.fromisoformat(blocked) if blocked else None)

    def put(self, key: str, counter: Counter, keep_seconds: int) -> None:
        import redis

        value = json.dumps({
            "failures": counter.failures,
            "last_failure_at": counter.last_failure_at.isoformat(),
            "blocked_until": counter.blocked_until.isoformat() if counter.blocked_until else None,
        })
        try:
            self.client.set(self.prefix + key, value, ex=max(keep_seconds, 1))
        except redis.RedisError as exc:
            self._down(exc)
            self._fallback.put(key, counter, keep_seconds)

    def clear(self, key: str) -> None:
        import redis

        try:
            self.client.delete(self.prefix + key)
        except redis.RedisError as exc:
            self._down(exc)
            self._fallback.clear(key)

    def ping(self) -> str:
        self.client.ping()
        return "redis"


_store: ThrottleStore | None = None
_store_path: str | None = None


def throttle_store() -> ThrottleStore:
    """The configured store (one instance per process, rebuilt if the setting changes)."""
    global _store, _store_path
    if _store is None or _store_path != settings.THROTTLE_STORE:
        _store = import_string(settings.THROTTLE_STORE)()
        _store_path = settings.THROTTLE_STORE
    return _store
