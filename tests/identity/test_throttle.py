"""Throttle stores (database, Redis, memory) and limit parsing."""

from __future__ import annotations

import datetime as dt
import secrets
import socket

import pytest

from enclave.core import clock
from enclave.identity import throttle
from enclave.identity.services import (
    Counter,
    DatabaseThrottleStore,
    MemoryThrottleStore,
    RedisThrottleStore,
)

REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


class TestParseLimit:
    def test_minutes(self):
        assert throttle.parse_limit("5/15m") == throttle.Limit(5, dt.timedelta(minutes=15))

    def test_hours(self):
        assert throttle.parse_limit("50/1h").window == dt.timedelta(hours=1)

    @pytest.mark.parametrize("text", ["5", "five/15m", "5/15d", "0/15m", "5/0m", ""])
    def test_malformed_limit_is_refused(self, text):
        with pytest.raises(ValueError, match="login limit must look like"):
            throttle.parse_limit(text)


def _roundtrip(store) -> Counter | None:
    key = secrets.token_hex(8)
    now = clock.now().replace(microsecond=0)
    store.put(key, Counter(3, now, now + dt.timedelta(minutes=2)), keep_seconds=60)
    got = store.get(key)
    store.clear(key)
    assert store.get(key) is None
    return got, now


class TestStores:
    def test_memory_store_keeps_counters(self):
        got, now = _roundtrip(MemoryThrottleStore())
        assert got == Counter(3, now, now + dt.timedelta(minutes=2))

    @pytest.mark.django_db
    def test_database_store_keeps_counters(self):
        got, now = _roundtrip(DatabaseThrottleStore())
        assert got == Counter(3, now, now + dt.timedelta(minutes=2))

    @pytest.mark.skipif(not redis_up(), reason="Redis at 127.0.0.1:6379 is not running")
    def test_redis_store_keeps_counters(self):
        got, now = _roundtrip(RedisThrottleStore(REDIS_URL))
        assert got == Counter(3, now, now + dt.timedelta(minutes=2))

    @pytest.mark.skipif(not redis_up(), reason="Redis at 127.0.0.1:6379 is not running")
    def test_redis_store_never_holds_the_email(self, settings):
        store = RedisThrottleStore(REDIS_URL)
        settings.THROTTLE_STORE = "tests.identity.test_throttle.redis_store_factory"
        redis_store_factory.instance = store
        throttle.record_failure("victim@example.com", "192.0.2.1")
        keys = [k.decode() for k in store.client.keys("enclave:throttle:*")]
        assert keys
        assert not any("victim" in k for k in keys)
        for k in keys:
            store.client.delete(k)

    @pytest.mark.skipif(not redis_up(), reason="Redis at 127.0.0.1:6379 is not running")
    def test_throttling_on_redis_blocks_and_recovers_with_the_clock(self, settings):
        redis_store_factory.instance = RedisThrottleStore(REDIS_URL)
        settings.THROTTLE_STORE = "tests.identity.test_throttle.redis_store_factory"
        email = f"{secrets.token_hex(4)}@example.com"
        for _ in range(5):
            throttle.record_failure(email, None)
        assert throttle.blocked_scopes(email, None) == ["per_member"]
        with clock.travel(dt.timedelta(minutes=1, seconds=1)):
            assert throttle.blocked_scopes(email, None) == []
        throttle.record_success(email)


def redis_store_factory():
    """THROTTLE_STORE expects a callable returning a store."""
    return redis_store_factory.instance
