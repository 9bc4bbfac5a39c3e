"""The tracking spec's anonymous ids under concurrent batches (PostgreSQL: the test
database on SQLite is shared-cache in-memory, and a file database writes one transaction
at a time, so the race exists only on server databases)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, connections

from enclave.events import actions, spec
from enclave.events.models import AnonymousId, Event
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.events.test_actions import principal_for
from tests.people.world import World


def send(world, principal, call: str, body: dict):
    return actions.do_ingest_spec(world.account, spec.read(json.dumps(body).encode(), call),
                                  actor=principal)


def wait_for_a_waiting_advisory_lock(seconds: float = 10) -> bool:
    """True once another transaction waits for an advisory lock (inside the caller's own
    transaction: pg_locks shows every backend's locks)."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND NOT granted")
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
class TestLinkingRaces:
    def test_page_view_racing_the_identify_that_links_it_goes_to_the_person(
            self, monkeypatch):
        if connection.vendor != "postgresql":
            pytest.skip("parallel writers race only on PostgreSQL")
        world = World()
        principal = principal_for(world)
        linked, failures, waited = threading.Event(), [], []
        real_record = actions.audit.record

        def record(*args, **kwargs):
            # The identify has linked anon-1 and attached its events; its transaction
            # stays open until the visitor's next page view (another app server) waits.
            if threading.current_thread().name == "identify":
                linked.set()
                waited.append(wait_for_a_waiting_advisory_lock())
            return real_record(*args, **kwargs)

        monkeypatch.setattr(actions.audit, "record", record)

        def run(call: str, body: dict, after: threading.Event | None) -> None:
            try:
                if after is not None:
                    after.wait(10)
                send(world, principal, call, body)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=run, name="identify", args=(
                "identify", {"anonymousId": "anon-1", "userId": "u-1"}, None)),
            threading.Thread(target=run, name="page", args=(
                "page", {"anonymousId": "anon-1", "name": "Pricing"}, linked))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (failures, waited) == ([], [True])
        person = Person.objects.get(account=world.account, external_id="u-1")
        assert Event.objects.get(type="page").person_id == person.pk
        do_erase_person(person, actor=world.actor("owner"))
        assert not Event.objects.filter(anonymous_id="anon-1").exists()

    def test_two_batches_claiming_one_visitor_at_once_link_it_once(self):
        if connection.vendor != "postgresql":
            pytest.skip("parallel writers race only on PostgreSQL")
        world = World()
        principal = principal_for(world)
        barrier, failures = threading.Barrier(2), []

        def claim(user: str) -> None:
            try:
                barrier.wait()
                send(world, principal, "batch", {"batch": [
                    {"type": "identify", "anonymousId": f"v-{i}", "userId": user}
                    for i in range(200)]})
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=claim, args=(u,)) for u in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        owners = set(AnonymousId.objects.values_list("person__external_id", flat=True))
        assert AnonymousId.objects.count() == 200
        assert len(owners) == 1  # one batch linked all 200; the other none
