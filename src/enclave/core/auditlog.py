"""The audit log is append-only.

PostgreSQL: a trigger installed by ``accounts/migrations/0003_audit_append_only`` refuses
every UPDATE and DELETE on ``core_auditevent`` unless the transaction has set
``enclave.audit_scrub = 'on'`` (``SET LOCAL``, so it ends with the transaction). The one
exception is the foreign-key clean-up Django performs when a member is deleted: an UPDATE
that changes nothing but ``actor_id`` to NULL.

SQLite (development and the default test database) has no transaction-local settings, so
the rule is enforced in the application instead: ``pre_save``/``pre_delete`` receivers
(connected in ``CoreConfig.ready``) refuse changing or deleting an existing
``AuditEvent`` through the ORM. Bulk ``QuerySet.update()`` and raw SQL bypass signals on
SQLite; the only code that changes audit rows is the erasure's raw SQL below.

Only erasure enters the scrub mode: :func:`scrub_mode` around the registry-derived SQL
of ``access.personal_data.erase_subjects`` (live erasure and restored backups).
"""

from __future__ import annotations

import contextlib

from django.db import DatabaseError


class AuditLogIsAppendOnly(Exception):
    """Something tried to change or delete an audit row outside the erasure scrub."""


@contextlib.contextmanager
def scrub_mode(conn, cursor):
    """Let raw SQL on ``cursor`` (of connection ``conn``: the live one inside a
    transaction, or a restored database's) change audit rows for the rest of this block.
    PostgreSQL: the trigger's setting, transaction-local when ``conn`` is in a transaction;
    SQLite: raw SQL does not pass through the application's signal guard."""
    if conn.vendor != "postgresql":
        yield
        return
    local = bool(getattr(conn, "in_atomic_block", False))
    cursor.execute("SELECT set_config('enclave.audit_scrub', 'on', %s)", [local])
    try:
        yield
    finally:
        if not getattr(conn, "needs_rollback", False):
            # A failed transaction is rolled back, and the setting with it.
            with contextlib.suppress(DatabaseError):
                cursor.execute("SELECT set_config('enclave.audit_scrub', 'off', %s)", [local])


def _refuse_update(sender, instance, raw=False, **kwargs) -> None:
    if instance.pk is not None and not instance._state.adding:
        raise AuditLogIsAppendOnly("audit events cannot be changed")


def _refuse_delete(sender, instance, **kwargs) -> None:
    raise AuditLogIsAppendOnly("audit events cannot be deleted")


def connect() -> None:
    from django.db.models.signals import pre_delete, pre_save

    from enclave.core.models import AuditEvent

    pre_save.connect(_refuse_update, sender=AuditEvent, dispatch_uid="audit-append-only-save")
    pre_delete.connect(_refuse_delete, sender=AuditEvent,
                       dispatch_uid="audit-append-only-delete")
