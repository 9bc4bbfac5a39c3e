"""/healthz and /readyz: public, cheap, nothing internal in the body; readiness follows the
database, the migrations, the keyring and Redis when it is configured."""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.request

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from enclave.server import health
from enclave.testing.live import free_port


@pytest.fixture(autouse=True)
def _fresh_checks():
    health.reset()
    yield
    health.reset()


def with_redis(url: str):
    return override_settings(CONFIG=dataclasses.replace(settings.CONFIG, redis_url=url))


@pytest.mark.django_db
class TestHealthz:
    def test_answers_ok_without_touching_the_database(self, client,
                                                      django_assert_num_queries):
        client.get("/healthz", secure=True)  # the process's first request warms its caches
        with django_assert_num_queries(0):
            response = client.get("/healthz", secure=True)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert response["Cache-Control"] == "no-store"

    def test_post_is_405(self, client):
        assert client.post("/healthz", secure=True).status_code == 405


@pytest.mark.django_db
class TestReadyz:
    def test_ready_when_every_check_passes(self, client):
        response = client.get("/readyz", secure=True)
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "checks": {
            "database": "ok", "migrations": "ok", "keyring": "ok",
            "redis": "not configured"}}

    @pytest.mark.django_db(transaction=True)
    def test_a_database_that_takes_no_writes_is_not_ready(self, client):
        from tests.core.test_database_unavailable import read_only_database

        with read_only_database():
            response = client.get("/readyz", secure=True)
        assert (response.status_code, response.json()["checks"]["database"]) == (
            503, "failing")

    def test_a_missing_migration_makes_it_not_ready_with_retry_after(self, client):
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM django_migrations WHERE app = 'events' AND "
                           "name = '0004_tracking_spec'")
        response = client.get("/readyz", secure=True)
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"] == "failing"
        assert response["Retry-After"] == "5"

    def test_unreachable_redis_is_degraded_not_unready(self, client):
        url = f"redis://127.0.0.1:{free_port()}/0"
        with with_redis(url):
            response = client.get("/readyz", secure=True)
        body = response.json()
        assert (response.status_code, body["status"], body["checks"]["redis"]) == (
            200, "degraded", "failing")
        assert url.rsplit(":", 1)[1] not in response.content.decode()

    def test_reachable_redis_is_ok(self, client):
        with with_redis("redis://127.0.0.1:6379/15"):
            response = client.get("/readyz", secure=True)
        assert response.json()["checks"]["redis"] == "ok"

    def test_a_flood_of_probes_runs_the_checks_once_a_second(self, client,
                                                              django_assert_num_queries):
        client.get("/readyz", secure=True)
        with django_assert_num_queries(0):
            for _ in range(20):
                assert client.get("/readyz", secure=True).status_code == 200

    def test_body_holds_only_check_names_and_outcomes(self, client):
        body = client.get("/readyz", secure=True).json()
        assert set(body) == {"status", "checks"}
        assert set(body["checks"].values()) <= {health.OK, health.FAILING,
                                                health.NOT_CONFIGURED}


@pytest.mark.slow
class TestServed:
    @pytest.mark.parametrize(("path", "body"), [
        ("/healthz", {"status": "ok"}),
        ("/readyz", {"status": "ready", "checks": {
            "database": "ok", "migrations": "ok", "keyring": "ok",
            "redis": "not configured"}})])
    def test_the_running_server_answers_its_probes(self, live_enclave, path, body):
        context = ssl.create_default_context(cafile=str(live_enclave.ca_file))
        with urllib.request.urlopen(f"{live_enclave.https_url}{path}",  # noqa: S310 - https
                                    context=context, timeout=15) as response:
            assert (response.status, json.loads(response.read())) == (200, body)
