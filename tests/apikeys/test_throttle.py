"""Rate limits per key and per IP: both backends (real Redis here), DRF and plain views."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from enclave.apikeys import throttle
from enclave.core import clock
from enclave.core import ratelimit as services
from enclave.core.ratelimit import LocalRateLimiter, RedisRateLimiter
from enclave.testing.live import free_port
from tests.apikeys.factories import bearer, make_key

URL = "/api/v1/api-keys"
START = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def redis_limiter():
    """A Redis limiter on the machine's Redis with a key prefix of its own."""
    prefix = f"enclave-test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter("redis://127.0.0.1:6379/0", prefix=prefix)
    yield limiter
    for key in limiter.client.scan_iter(f"{prefix}*"):
        limiter.client.delete(key)


@pytest.fixture(params=["local", "redis"])
def limiter(request, redis_limiter):
    return LocalRateLimiter() if request.param == "local" else redis_limiter


@pytest.fixture
def use_limiter(settings):
    """Install ``limiter`` as the process's rate limiter for the test."""
    installed = []

    def install(limiter):
        services._limiter = limiter
        services._limiter_path = settings.API_RATE_LIMITER
        installed.append(limiter)

    yield install
    services._limiter = None


class TestBackends:
    def test_limit_allows_then_refuses_within_the_window(self, limiter):
        with clock.frozen(START + dt.timedelta(seconds=15)):
            decisions = [limiter.hit("k", 3, 60) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[-1].retry_after == 45

    def test_next_window_starts_a_fresh_count(self, limiter):
        with clock.frozen(START):
            for _ in range(3):
                limiter.hit("k", 2, 60)
            clock.advance(dt.timedelta(seconds=60))
            assert limiter.hit("k", 2, 60).allowed

    def test_keys_are_counted_separately(self, limiter):
        with clock.frozen(START):
            limiter.hit("a", 1, 60)
            assert limiter.hit("b", 1, 60).allowed
            assert not limiter.hit("a", 1, 60).allowed

    def test_peek_reports_hits_without_counting_one(self, limiter):
        with clock.frozen(START):
            limiter.hit("k", 5, 60)
            limiter.hit("k", 5, 60)
            assert limiter.peek("k", 60) == 2
            assert limiter.peek("k", 60) == 2
            assert limiter.peek("other", 60) == 0

    def test_redis_counts_are_shared_by_every_app_server(self, redis_limiter):
        other_server = RedisRateLimiter("redis://127.0.0.1:6379/0",
                                        prefix=redis_limiter.prefix)
        with clock.frozen(START):
            redis_limiter.hit("k", 2, 60)
            other_server.hit("k", 2, 60)
            assert not redis_limiter.hit("k", 2, 60).allowed

    def test_redis_counter_expires_after_its_window(self, redis_limiter):
        with clock.frozen(START):
            redis_limiter.hit("k", 5, 60)
        keys = list(redis_limiter.client.scan_iter(f"{redis_limiter.prefix}*"))
        assert len(keys) == 1
        assert 0 < redis_limiter.client.ttl(keys[0]) <= 61

    def test_unreachable_redis_falls_back_to_local_limits(self):
        port = free_port()
        limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0")
        with clock.frozen(START):
            assert limiter.hit("k", 1, 60).allowed
            assert not limiter.hit("k", 1, 60).allowed


@pytest.mark.django_db
class TestApiThrottling:
    @pytest.mark.parametrize("backend", ["local", "redis"])
    def test_key_over_its_limit_gets_429_with_retry_after(
            self, world, client, settings, use_limiter, redis_limiter, backend):
        use_limiter(LocalRateLimiter() if backend == "local" else redis_limiter)
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.key": "2/min"}
        token, _ = make_key(world.account, world.members["owner"], scopes=["api_keys:read"])
        with clock.frozen(START + dt.timedelta(seconds=20)):
            statuses = [client.get(URL, **bearer(token)).status_code for _ in range(3)]
            response = client.get(URL, **bearer(token))
        assert statuses == [200, 200, 429]
        assert response["Retry-After"] == "40"
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("/problems/rate-limited")

    def test_requests_refused_for_scope_still_count_against_the_key(
            self, world, client, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.key": "2/min"}
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        with clock.frozen(START):
            statuses = [client.get(URL, **bearer(token)).status_code for _ in range(3)]
        assert statuses == [403, 403, 429]

    def test_another_key_is_not_slowed_by_a_throttled_one(self, world, client, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.key": "1/min"}
        first, _ = make_key(world.account, world.members["owner"], scopes=["api_keys:read"])
        second, _ = make_key(world.account, world.members["owner"], scopes=["api_keys:read"])
        with clock.frozen(START):
            client.get(URL, **bearer(first))
            assert client.get(URL, **bearer(first)).status_code == 429
            assert client.get(URL, **bearer(second)).status_code == 200

    @pytest.mark.parametrize("backend", ["local", "redis"])
    def test_client_ip_over_its_limit_gets_429(
            self, world, client, settings, use_limiter, redis_limiter, backend):
        use_limiter(LocalRateLimiter() if backend == "local" else redis_limiter)
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.ip": "2/min"}
        with clock.frozen(START):
            statuses = [client.get("/api/v1/health", REMOTE_ADDR="198.51.100.5").status_code
                        for _ in range(3)]
            other_ip = client.get("/api/v1/health", REMOTE_ADDR="198.51.100.6").status_code
        assert statuses == [200, 200, 429]
        assert other_ip == 200

    def test_loopback_is_exempt_from_the_ip_limit(self, world, client, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.ip": "1/min"}
        with clock.frozen(START):
            statuses = [client.get("/api/v1/health").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]


class TestRates:
    @pytest.mark.parametrize(("text", "parsed"), [("1000/min", (1000, 60)),
                                                  ("5/s", (5, 1)), ("10/hour", (10, 3600))])
    def test_named_rates_parse(self, text, parsed):
        from enclave.config import parse_rate

        assert parse_rate(text) == parsed

    @pytest.mark.parametrize("text", ["0/min", "ten/min", "5/fortnight", "5"])
    def test_bad_rates_are_refused_in_configuration(self, text):
        from enclave.config import ConfigError, load

        with pytest.raises(ConfigError) as exc:
            load({"ENCLAVE_API_RATES": f"api.key={text}"})
        assert "ENCLAVE_API_RATES" in str(exc.value)

    def test_configuration_overrides_a_named_rate(self):
        from enclave.config import load

        cfg = load({"ENCLAVE_API_RATES": "api.key=50/min, ingest.ip=9/s"})
        assert dict(cfg.api_rates) == {"api.key": "50/min", "ingest.ip": "9/s"}


@pytest.mark.django_db
class TestRefusedKeysPerAddress:
    @pytest.fixture(autouse=True)
    def _limit(self, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "api.auth_failures": "2/min"}

    def test_address_over_the_failure_limit_gets_429_even_with_a_good_key(
            self, world, client):
        from enclave.apikeys import tokens

        token, _ = make_key(world.account, world.members["owner"], scopes=["api_keys:read"])
        guess = tokens.make_token("test", tokens.new_public_id())
        with clock.frozen(START + dt.timedelta(seconds=30)):
            statuses = [client.get(URL, REMOTE_ADDR="198.51.100.20", **bearer(guess)).status_code
                        for _ in range(2)]
            blocked = client.get(URL, REMOTE_ADDR="198.51.100.20", **bearer(token))
            elsewhere = client.get(URL, REMOTE_ADDR="198.51.100.21", **bearer(token))
        assert statuses == [401, 401]
        assert blocked.status_code == 429
        assert blocked["Retry-After"] == "30"
        assert elsewhere.status_code == 200

    def test_blocked_address_costs_no_database_query(self, world, rf,
                                                     django_assert_num_queries):
        from enclave.apikeys import tokens
        from enclave.apikeys.auth import authenticate_request

        guess = tokens.make_token("test", tokens.new_public_id())
        request = rf.get(URL, REMOTE_ADDR="198.51.100.22", **bearer(guess))
        with clock.frozen(START):
            for _ in range(2):
                with pytest.raises(Exception, match="No API key matches"):
                    authenticate_request(request)
            with django_assert_num_queries(0), pytest.raises(throttle.RateLimited):
                authenticate_request(request)

    def test_the_limit_ends_with_its_window(self, world, client):
        from enclave.apikeys import tokens

        token, _ = make_key(world.account, world.members["owner"], scopes=["api_keys:read"])
        guess = tokens.make_token("test", tokens.new_public_id())
        with clock.frozen(START):
            for _ in range(3):
                client.get(URL, REMOTE_ADDR="198.51.100.23", **bearer(guess))
            clock.advance(dt.timedelta(minutes=1))
            assert client.get(URL, REMOTE_ADDR="198.51.100.23",
                              **bearer(token)).status_code == 200
