"""A database that cannot take writes (a failover: the old primary read-only, or gone) is
a 503 with Retry-After — problem+json for the API and ingest, a page for the web app —
never a 500; nothing is half-written, and an ingest retry with the same message ids is
stored once the database takes writes again."""

from __future__ import annotations

import contextlib

import pytest
from django.db import OperationalError, connection

from enclave.core.views import database_unavailable
from enclave.events.models import Event
from enclave.people.models import Person
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key
from tests.people.world import World


@contextlib.contextmanager
def read_only_database():
    """This connection's later transactions cannot write (PostgreSQL: as a replica's;
    SQLite: query_only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        else:
            cursor.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
            else:
                cursor.execute("PRAGMA query_only = OFF")


BODY = {"batch": [{"type": "track", "event": "Viewed pricing", "message_id": "m-1"},
                  {"type": "identify", "email": "new@example.com", "message_id": "m-2"}]}


@pytest.mark.django_db(transaction=True)
class TestReadOnlyDatabase:
    def test_ingest_is_503_with_retry_after_and_a_retry_later_stores_once(self):
        world = World()
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        client = ApiClient(token, raise_request_exception=False)
        client.post("/api/v1/events", {"type": "track", "event": "warm"})  # key in use
        with read_only_database():
            refused = client.post("/api/v1/events", BODY)
        assert refused.status_code == 503
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/problems/unavailable")
        assert refused["Retry-After"] == "5"
        assert not Person.objects.filter(email="new@example.com").exists()
        for _ in range(2):
            assert client.post("/api/v1/events", BODY).status_code == 202
        assert Event.objects.filter(message_id__in=["m-1", "m-2"]).count() == 2

    def test_tracking_spec_call_is_503_which_the_sdks_retry(self):
        world = World()
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        client = ApiClient(token, raise_request_exception=False)
        with read_only_database():
            response = client.post("/api/ingest/v1/track",
                                   {"userId": "u-1", "event": "Signed up"})
        assert (response.status_code, response["Retry-After"]) == (503, "5")
        assert not Event.objects.exists()

    def test_web_page_that_writes_is_a_503_page(self, client):
        client.raise_request_exception = False
        with read_only_database():
            response = client.post("/app/login/", {"email": "a@example.com",
                                                  "password": "x" * 12}, secure=True)
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert b"Try again in a moment" in response.content


class TestClassification:
    def test_a_bug_is_not_taken_for_an_unavailable_database(self):
        assert not database_unavailable(ValueError("bug"))

    def test_a_bug_raised_while_a_database_error_was_handled_stays_a_bug(self):
        try:
            try:
                raise OperationalError("database is locked")
            except OperationalError:
                raise KeyError("bug") from None
        except KeyError as exc:
            bug = exc
        assert not database_unavailable(bug)

    def test_sqlite_locked_database_is_unavailable(self):
        assert database_unavailable(OperationalError("database is locked"))

    def test_a_missing_table_is_a_bug_not_an_outage(self):
        assert not database_unavailable(OperationalError("no such table: people_person"))

    def test_none_is_not_unavailable(self):
        assert not database_unavailable(None)
