"""The outbox without database foreign keys (messaging migrations 0012-0013): no outbox
row outlives its person or its broadcast — whichever way they are deleted, and when a
person goes while a snapshot that read them is still running —, a row whose person is
gone all the same is skipped, not sent or stuck, and the state column compares bytewise
on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import DatabaseError, connection, connections, transaction

from enclave.core import clock
from enclave.messaging import actions, pipeline
from enclave.messaging.actions import broadcasts
from enclave.messaging.models import Broadcast, OutboxMessage
from enclave.people import locks as people_locks
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.messaging.test_broadcasts import Setup
from tests.people.world import World

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="database trigger and locks: PostgreSQL")


def _rows_of(person: Person) -> int:
    return OutboxMessage.objects.filter(person_id=person.pk).count()


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return Setup(world, local_dns)


@pytest.mark.django_db
class TestNoRowOutlivesWhatItReferences:
    def test_deleting_a_person_through_the_orm_removes_their_outbox_rows(self, setup):
        gone, kept = setup.person("gone@example.com"), setup.person("kept@example.com")
        setup.queue(setup.broadcast())
        gone.delete()
        assert (_rows_of(gone), _rows_of(kept)) == (0, 1)

    def test_deleting_a_person_in_sql_removes_their_outbox_rows(self, setup):
        kept = setup.person("kept@example.com")
        broadcast = setup.queue(setup.broadcast())
        # Nothing but the outbox row refers to this one (the other tables keep their keys).
        gone = setup.person("gone@example.com", subscribed=None)
        OutboxMessage.objects.create(broadcast=broadcast, person=gone)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM people_person WHERE id = %s", [gone.pk])
        assert (_rows_of(gone), _rows_of(kept)) == (0, 1)

    def test_deleting_a_broadcast_in_sql_removes_its_outbox_rows(self, setup):
        setup.person("a@example.com")
        gone = setup.queue(setup.broadcast())
        kept = setup.queue(setup.broadcast(name="July news"))
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM messaging_broadcast WHERE id = %s", [gone.pk])
        assert not OutboxMessage.objects.filter(broadcast_id=gone.pk).exists()
        assert OutboxMessage.objects.filter(broadcast_id=kept.pk).count() == 1

    def test_a_row_whose_person_is_gone_is_skipped_and_the_broadcast_ends(self, setup, smtp,
                                                                            sink):
        setup.person("kept@example.com")
        broadcast = setup.queue(setup.broadcast())
        with connection.cursor() as cursor:  # as a restore or a hand-made delete could leave
            cursor.execute("DROP TRIGGER enclave_outbox_people_gone" + (
                " ON people_person" if connection.vendor == "postgresql" else ""))
        gone = setup.person("gone@example.com", subscribed=None)
        OutboxMessage.objects.create(broadcast=broadcast, person=gone)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM people_person WHERE id = %s", [gone.pk])
        assert pipeline.run_once(smtp) == {"sent": 1, "skipped": 1}
        orphan = OutboxMessage.objects.get(person_id=gone.pk)
        assert (orphan.state, orphan.detail, orphan.lease_id) == (
            "skipped", "no longer a recipient", "")
        pipeline.run_once(smtp)
        assert Broadcast.objects.get(pk=broadcast.pk).state == "sent"
        assert [rcpt for _, rcpt, _ in sink.handler.received] == [["kept@example.com"]]

    @postgresql_only
    def test_the_people_trigger_takes_the_lock_snapshots_hold(self, db):
        # Migration 0012 writes the numbers out (migrations stay frozen): they must be
        # people.locks' own, or a deletion in SQL would not wait for a running snapshot.
        with connection.cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc "
                           "WHERE proname = 'enclave_outbox_people_gone'")
            [(source,)] = cursor.fetchall()
        assert f"pg_advisory_xact_lock({people_locks.CLASS}, " in source
        assert f"(account % {people_locks._MODULUS})::integer" in source

    @postgresql_only
    def test_the_state_column_compares_bytewise(self, db):
        with connection.cursor() as cursor:
            cursor.execute("SELECT collation_name FROM information_schema.columns "
                           "WHERE table_name = 'messaging_outboxmessage' "
                           "AND column_name = 'state'")
            assert cursor.fetchone() == ("C",)


def _waiting_on_advisory_lock() -> bool:
    """Whether another connection waits on an advisory lock (asked inside the snapshot's
    transaction: the activity view is read afresh, not the transaction's cached copy)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
class TestAPersonErasedDuringASnapshot:
    """The snapshot (queued by hand or started on schedule, held open in an outer
    transaction) has read the person and inserted their row, not yet committed; their
    erasure runs meanwhile in another connection."""

    @staticmethod
    def _snapshot(setup: Setup, broadcast: Broadcast, how: str) -> None:
        if how == "queued":
            setup.queue(broadcast)
            return
        send_at = clock.now() + dt.timedelta(hours=1)
        actions.do_schedule_broadcast(broadcast, send_at, actor=setup.owner)
        assert broadcasts.do_start_scheduled_broadcast(broadcast.pk, now=send_at, actor=None)

    @postgresql_only
    @pytest.mark.parametrize("how", ["queued", "scheduled"])
    def test_the_erasure_waits_for_the_snapshot_then_removes_its_row(self, local_dns, how):
        setup = Setup(World(), local_dns)
        gone, kept = setup.person("gone@example.com"), setup.person("kept@example.com")
        broadcast = setup.broadcast()
        erased, failures = threading.Event(), []

        def erase() -> None:
            try:
                do_erase_person(Person.objects.get(pk=gone.pk),
                                actor=setup.world.actor("owner"))
                erased.set()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
            finally:
                connections.close_all()

        eraser = threading.Thread(target=erase)
        with transaction.atomic():  # the snapshot's own transaction commits with this one
            self._snapshot(setup, broadcast, how)
            eraser.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_advisory_lock():
                assert (erased.is_set(), failures) == (False, []), \
                    "the erasure did not wait for the snapshot"
                assert time.monotonic() < deadline, "the erasure never started waiting"
                time.sleep(0.01)
            # It waits before locking anything of the person's: their row is free.
            assert Person.objects.select_for_update(nowait=True).filter(pk=gone.pk).exists()
        eraser.join(30)
        assert (erased.is_set(), failures) == (True, [])
        assert not Person.objects.filter(pk=gone.pk).exists()
        assert (_rows_of(gone), _rows_of(kept)) == (0, 1)
        assert Broadcast.objects.get(pk=broadcast.pk).recipients == 2


@pytest.mark.django_db(transaction=True)
class TestReadCommittedOnly:
    @postgresql_only
    def test_a_snapshot_refuses_a_stricter_isolation_level(self, local_dns):
        setup = Setup(World(), local_dns)
        setup.person("a@example.com")
        broadcast = setup.broadcast()
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                           "REPEATABLE READ")
        try:
            with pytest.raises(people_locks.WrongIsolation):
                setup.queue(broadcast)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                               "READ COMMITTED")
        assert not OutboxMessage.objects.exists()

    @postgresql_only
    def test_deleting_people_refuses_a_stricter_isolation_level(self, local_dns):
        person = Setup(World(), local_dns).person("a@example.com", subscribed=None)
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                           "REPEATABLE READ")
            try:
                with pytest.raises(DatabaseError, match="READ COMMITTED"):
                    cursor.execute("DELETE FROM people_person WHERE id = %s", [person.pk])
            finally:
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION "
                               "LEVEL READ COMMITTED")
        assert Person.objects.filter(pk=person.pk).exists()
