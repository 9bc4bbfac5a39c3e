"""Throttle stores (database, Redis, memory) and limit parsing."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import socket
import subprocess
import time

import pytest
import redis

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

    @pytest.mark.django_db
    def test_throttling_still_blocks_while_redis_is_unreachable(self, settings, caplog):
        from enclave.testing.live import free_port

        redis_store_factory.instance = RedisThrottleStore(
            f"redis://127.0.0.1:{free_port()}/0")
        settings.THROTTLE_STORE = "tests.identity.test_throttle.redis_store_factory"
        email = f"{secrets.token_hex(4)}@example.com"
        for _ in range(5):
            throttle.record_failure(email, None)
        assert throttle.blocked_scopes(email, None) == ["per_member"]
        assert "Redis unavailable" in caplog.text

    @pytest.mark.django_db
    def test_throttling_blocks_when_redis_takes_reads_but_refuses_writes(self, settings):
        with redis_replica() as url:
            redis_store_factory.instance = RedisThrottleStore(url)
            settings.THROTTLE_STORE = "tests.identity.test_throttle.redis_store_factory"
            email = f"{secrets.token_hex(4)}@example.com"
            for _ in range(5):
                throttle.record_failure(email, None)
            assert throttle.blocked_scopes(email, None) == ["per_member"]

    @pytest.mark.django_db
    def test_a_hung_redis_is_tried_once_per_outage_and_logged_once(self, settings, caplog):
        with socket.socket() as listener:  # accepts connections, never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen(100)
            store = RedisThrottleStore(f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
            redis_store_factory.instance = store
            settings.THROTTLE_STORE = "tests.identity.test_throttle.redis_store_factory"
            email = f"{secrets.token_hex(4)}@example.com"
            for _ in range(3):
                throttle.blocked_scopes(email, "203.0.113.9")
                throttle.record_failure(email, "203.0.113.9")
        assert caplog.text.count("Redis unavailable") == 1
        assert throttle.blocked_scopes(email, None) == []  # 3 failures: not yet blocked

    @pytest.mark.django_db
    def test_counters_from_an_outage_still_count_once_redis_is_back(self, settings):
        store = RedisThrottleStore(REDIS_URL)
        redis_store_factory.instance = store
        settings.THROTTLE_STORE = "tests.identity.test_throttle.redis_store_factory"
        email = f"{secrets.token_hex(4)}@example.com"
        store._failed(OSError("outage"))  # as after a failed call: the database counts
        for _ in range(4):
            throttle.record_failure(email, None)
        store._down_until = 0.0  # Redis is back
        throttle.record_failure(email, None)
        assert throttle.blocked_scopes(email, None) == ["per_member"]

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


@pytest.fixture(autouse=True)
def _fresh_store():
    """throttle_store() keeps one store per settings path: each test gets its own."""
    from enclave.identity import services

    services._store = None
    yield
    services._store = None


@contextlib.contextmanager
def redis_replica():
    """A real Redis replica of the local Redis: it answers reads and refuses writes."""
    from enclave.testing.live import free_port

    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--replicaof", "127.0.0.1", "6379"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def redis_store_factory():
    """THROTTLE_STORE expects a callable returning a store."""
    return redis_store_factory.instance


def patient_attempts(record, blocked, hours: int) -> int:
    """How many attempts an attacker gets in ``hours`` by trying again the moment each
    block ends (every attempt wrong)."""
    start = clock.now()
    attempts = 0
    with clock.frozen(start):
        while clock.now() < start + dt.timedelta(hours=hours):
            ends = blocked()
            if ends:
                clock.advance(max(ends.values()) - clock.now() + dt.timedelta(seconds=1))
                continue
            record()
            attempts += 1
    return attempts


@pytest.mark.django_db
class TestBackOffPolicy:
    def test_patient_attacker_stays_at_the_longest_back_off(self):
        # 5 at once, then after 1, 2, 4 and 8 minutes, then one per 15-minute block:
        # 9 in the first 15 min 4 s, then (86400 - 904) // 901 = 94 more in the day.
        keys = throttle.second_factor_keys(7, None)
        got = patient_attempts(lambda: throttle.record_failures(keys),
                               lambda: throttle.blocking(keys), hours=24)
        assert got == 103

    def test_quiet_window_after_the_block_resets_the_count(self):
        keys = throttle.password_keys("victim@example.com", None)
        with clock.frozen(clock.now()):
            for _ in range(5):
                throttle.record_failures(keys)
            clock.advance(dt.timedelta(minutes=1 + 15, seconds=1))
            throttle.record_failures(keys)
            assert throttle.blocking(keys) == {}


@pytest.mark.django_db
class TestSeparateCounters:
    def test_right_password_leaves_the_second_factor_count(self):
        for _ in range(5):
            throttle.record_second_factor_failure(7, None)
        throttle.record_success("jane@example.com")
        assert throttle.second_factor_blocked_scopes(7, None) == ["mfa_per_member"]

    def test_wrong_codes_do_not_block_password_attempts_for_the_address(self):
        for _ in range(5):
            throttle.record_second_factor_failure(7, None)
        assert throttle.blocked_scopes("jane@example.com", None) == []

    def test_wrong_codes_count_on_the_ip_limit(self, settings):
        settings.LOGIN_LIMITS = {**settings.LOGIN_LIMITS, "per_ip": "3/15m"}
        for member_id in (1, 2, 3):
            throttle.record_second_factor_failure(member_id, "192.0.2.5")
        assert throttle.blocked_scopes("anyone@example.com", "192.0.2.5") == ["per_ip"]

    def test_address_key_is_the_canonical_form(self):
        for typed in ("JANE@EXAMPLE.COM", "ｊａｎｅ@example.com", " Jane@Example.com",
                      "jane@EXAMPLE.com", "ＪＡＮＥ@example.com"):
            throttle.record_failure(typed, None)
        assert throttle.blocked_scopes("jane@example.com", None) == ["per_member"]

    def test_throttled_says_how_long_to_wait(self):
        with clock.frozen(clock.now()):
            exc = throttle.Throttled({"per_member": clock.now() + dt.timedelta(seconds=90)})
        assert (str(exc), exc.retry_after) == ("Too many attempts. Wait 2 minutes and try "
                                               "again.", 90)
