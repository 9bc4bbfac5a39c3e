"""The audit log is append-only.

PostgreSQL: a trigger installed by ``accounts/migrations/0003_audit_append_only`` refuses
every UPDATE and DELETE on ``core_auditevent`` unless the transaction has set
``enclave.audit_scrub = 'on'`` (``SET LOCAL``, so it ends with the transaction). The one
exception is the foreign-key clean-up Django performs when a member is deleted: an UPDATE
that changes nothing but ``actor_id`` to NULL.

SQLite (development and the default test database) has no transaction-local settings, so
the rule is enforced in the application instead: ``pre_save``/``pre_delete`` receivers
(connected in ``AccountsConfig.ready``) refuse changing or deleting an existing
``AuditEvent`` outside :func:`scrubbing`. Bulk ``QuerySet.update()`` bypasses signals on
SQLite; no code in Enclave does that to the audit table.

Only the erasure action (``people.actions.do_erase_person``) enters :func:`scrubbing`.
"""

from __future__ import annotations

import contextlib
import threading

from django.db import DatabaseError, connection, transaction

_state = threading.local()


class AuditLogIsAppendOnly(Exception):
    """Something tried to change or delete an audit row outside the erasure scrub."""


@contextlib.contextmanager
def scrubbing():
    """Allow changing audit rows for the rest of this block (inside a transaction)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("scrubbing() must run inside the erasure transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enclave.audit_scrub = 'on'")
    _state.active = True
    try:
        yield
    finally:
        _state.active = False
        if connection.vendor == "postgresql" and not connection.needs_rollback:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enclave.audit_scrub = 'off'")
            except DatabaseError:
                pass  # a failed transaction is rolled back, and SET LOCAL with it


def _refuse_update(sender, instance, raw=False, **kwargs) -> None:
    if instance.pk is not None and not instance._state.adding and not getattr(
            _state, "active", False):
        raise AuditLogIsAppendOnly("audit events cannot be changed")


def _refuse_delete(sender, instance, **kwargs) -> None:
    if not getattr(_state, "active", False):
        raise AuditLogIsAppendOnly("audit events cannot be deleted")


def connect() -> None:
    from django.db.models.signals import pre_delete, pre_save

    from enclave.core.models import AuditEvent

    pre_save.connect(_refuse_update, sender=AuditEvent, dispatch_uid="audit-append-only-save")
    pre_delete.connect(_refuse_delete, sender=AuditEvent,
                       dispatch_uid="audit-append-only-delete")
