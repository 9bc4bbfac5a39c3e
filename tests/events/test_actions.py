"""do_ingest_events and the message-id purge, called directly (real keys, real DB)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, connections

from enclave.apikeys.auth import authenticate_token
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.events import actions, schema
from enclave.events.models import Event, MessageId
from enclave.people.models import Person
from tests.apikeys.factories import make_key
from tests.events.triggers import TRIGGERS
from tests.people.world import World


def principal_for(world: World, scopes=("events:write",)):
    token, _ = make_key(world.account, world.members["owner"], scopes=list(scopes))
    return authenticate_token(token, "127.0.0.1")


def events(body: bytes):
    return schema.parse(body).events


@pytest.mark.django_db
class TestIngestAction:
    def test_principal_without_the_scope_is_refused(self):
        world = World()
        principal = principal_for(world, scopes=["people:read"])
        with pytest.raises(PermissionDenied):
            actions.do_ingest_events(world.account, events(b'{"type":"track","event":"e"}'),
                                     actor=principal)
        assert not Event.objects.exists()

    def test_principal_of_another_account_is_refused(self):
        world = World()
        with pytest.raises(PermissionDenied):
            actions.do_ingest_events(world.other, events(b'{"type":"track","event":"e"}'),
                                     actor=principal_for(world))

    def test_result_counts_duplicates_by_position(self):
        world = World()
        principal = principal_for(world)
        body = b'{"batch":[{"type":"track","event":"e","message_id":"a"}]}'
        actions.do_ingest_events(world.account, events(body), actor=principal)
        result = actions.do_ingest_events(world.account, events(body), actor=principal)
        assert (result.received, result.stored, result.duplicates) == (1, 0, (0,))

    @pytest.mark.parametrize("event_type", list(TRIGGERS), ids=lambda e: e.name)
    def test_each_events_audit_type_is_emitted(self, event_type):
        TRIGGERS[event_type]({})
        assert AuditEvent.objects.filter(event_type=event_type).exists()


@pytest.mark.django_db
class TestPurge:
    def test_purge_drops_only_ids_older_than_24_hours(self):
        world = World()
        principal = principal_for(world)
        actions.do_ingest_events(world.account, events(
            b'{"type":"track","event":"e","message_id":"old"}'), actor=principal)
        with clock.travel(dt.timedelta(hours=23)):
            actions.do_ingest_events(world.account, events(
                b'{"type":"track","event":"e","message_id":"new"}'), actor=principal)
        with clock.travel(dt.timedelta(hours=24, minutes=30)):
            purged = actions.do_purge_message_ids()
        assert purged == 1
        assert list(MessageId.objects.values_list("message_id", flat=True)) == ["new"]
        assert Event.objects.count() == 2  # events themselves are kept

    def test_purge_with_nothing_expired_writes_no_audit_row(self):
        assert actions.do_purge_message_ids() == 0
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.EVENT_MESSAGE_IDS_PURGED).exists()

    def test_purge_works_through_more_ids_than_one_chunk(self):
        world = World()
        principal = principal_for(world)
        body = b'{"batch":[' + b",".join(
            b'{"type":"track","event":"e","message_id":"m-%d"}' % i for i in range(7)) + b"]}"
        actions.do_ingest_events(world.account, events(body), actor=principal)
        with clock.travel(dt.timedelta(hours=25)):
            assert actions.do_purge_message_ids(chunk=3) == 7
        assert not MessageId.objects.exists()
        rows = AuditEvent.objects.filter(event_type=AuditEventType.EVENT_MESSAGE_IDS_PURGED)
        assert [r.extra_data for r in rows] == [{"message_ids": 7}]


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    def test_same_message_id_from_parallel_requests_is_stored_once(self):
        if connection.vendor != "postgresql":
            # The test database is shared-cache in-memory SQLite, which raises "table is
            # locked" instead of waiting; a file database (embedded mode) serialises
            # writers with BEGIN IMMEDIATE, so the race exists only on server databases.
            pytest.skip("parallel writers race only on PostgreSQL")
        world = World()
        principal = principal_for(world)
        body = b'{"batch":[' + b",".join(
            b'{"type":"track","event":"e","message_id":"m-%d"}' % i for i in range(50)) + b']}'
        barrier, results, failures = threading.Barrier(4), [], []

        def send():
            try:
                barrier.wait()
                results.append(actions.do_ingest_events(world.account, events(body),
                                                        actor=principal))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sum(r.stored for r in results) == 50
        assert Event.objects.count() == 50

    def test_same_new_person_from_parallel_batches_is_created_once(self):
        if connection.vendor != "postgresql":
            pytest.skip("parallel writers race only on PostgreSQL")
        world = World()
        principal = principal_for(world)
        failures = []

        def send(n: int) -> None:
            body = (b'{"type":"identify","email":"race@example.com","fields":'
                    b'{"first_name":"T%d"}}' % n)
            try:
                actions.do_ingest_events(world.account, events(body), actor=principal,
                                         batched=False)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert Person.objects.filter(account=world.account, email="race@example.com").count() == 1
