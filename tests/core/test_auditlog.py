"""The audit log is append-only: by the database on PostgreSQL, by the model on SQLite."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from enclave.core import audit, auditlog
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import Member


def write_event() -> AuditEvent:
    with transaction.atomic():
        return audit.record(AuditEventType.ACCOUNT_CREATED, extra={"n": 1})


@pytest.mark.django_db
class TestAppendOnlyModel:
    def test_saving_an_existing_row_is_refused(self):
        event = write_event()
        event.extra_data = {"n": 2}
        with pytest.raises(auditlog.AuditLogIsAppendOnly):
            event.save()
        assert AuditEvent.objects.get(pk=event.pk).extra_data == {"n": 1}

    def test_deleting_a_row_is_refused(self):
        event = write_event()
        with pytest.raises(auditlog.AuditLogIsAppendOnly), transaction.atomic():
            event.delete()
        assert AuditEvent.objects.filter(pk=event.pk).exists()

    def test_scrub_mode_allows_changes_inside_its_transaction(self):
        event = write_event()
        with transaction.atomic(), connection.cursor() as cursor, \
                auditlog.scrub_mode(connection, cursor):
            cursor.execute("UPDATE core_auditevent SET scrubbed = %s WHERE id = %s",
                           [True, event.pk])
        assert AuditEvent.objects.get(pk=event.pk).scrubbed


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="database trigger: PostgreSQL")
class TestAppendOnlyDatabase:
    def test_update_is_refused_by_the_database(self):
        event = write_event()
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(extra_data={"n": 2})
        assert AuditEvent.objects.get(pk=event.pk).extra_data == {"n": 1}

    def test_delete_is_refused_by_the_database(self):
        event = write_event()
        with (pytest.raises(DatabaseError, match="append-only"), transaction.atomic(),
              connection.cursor() as cursor):
            cursor.execute("DELETE FROM core_auditevent WHERE id = %s", [event.pk])
        assert AuditEvent.objects.filter(pk=event.pk).exists()

    def test_scrub_setting_ends_with_its_transaction(self):
        event = write_event()
        with transaction.atomic(), connection.cursor() as cursor, \
                auditlog.scrub_mode(connection, cursor):
            cursor.execute("UPDATE core_auditevent SET scrubbed = TRUE WHERE id = %s",
                           [event.pk])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(scrubbed=False)
        assert AuditEvent.objects.get(pk=event.pk).scrubbed

    def test_deleting_a_member_nulls_their_actor_reference(self):
        member = Member.objects.create(email="gone@example.com")
        with transaction.atomic():
            event = audit.record(AuditEventType.ACCOUNT_CREATED, actor=member)
        member.delete()
        assert AuditEvent.objects.get(pk=event.pk).actor_id is None
