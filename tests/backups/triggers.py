"""One trigger per backup audit event type, for tests/core/test_audit.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import tempfile
from pathlib import Path

from enclave.core.models import AuditEventType


@contextlib.contextmanager
def _dump_outside_test_transaction():
    """These triggers run inside the test's transaction, where SQLite's online backup
    cannot read (tests/backups covers the real thing with transactional tests): on SQLite,
    the dump is a small valid database instead. PostgreSQL's pg_dump runs for real."""
    from django.db import connection

    from enclave.backups import databases

    if connection.vendor != "sqlite":
        yield
        return

    def dump(write, workdir):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "stub.sqlite3"
            db = sqlite3.connect(path)
            db.execute("CREATE TABLE django_migrations (app TEXT, name TEXT)")
            db.commit()
            db.close()
            write(path.read_bytes())
        return {"django_migrations": 0}

    real = databases.dump_sqlite
    databases.dump_sqlite = dump
    try:
        yield
    finally:
        databases.dump_sqlite = real


def _with_backup(then):
    from enclave.backups import actions, services

    with services.use_target(services.MemoryTarget()), _dump_outside_test_transaction():
        backup = actions.do_create_backup()
        return then(actions, backup)


def trigger_restored(tmp_path):
    from django.db import connection

    from enclave.backups import databases

    destination = (str(tmp_path / "restored.sqlite3") if connection.vendor == "sqlite"
                   else f"{connection.settings_dict['NAME'][:40]}_trigger")
    try:
        _with_backup(lambda a, b: a.do_restore_backup(b.backup_id, to=destination))
    finally:
        if connection.vendor != "sqlite":
            databases.drop_pg_database(destination)


def trigger_expunged():
    from enclave.backups import actions, services
    from enclave.core import clock

    with services.use_target(services.MemoryTarget()), _dump_outside_test_transaction():
        with clock.travel(dt.timedelta(days=-100)):
            actions.do_create_backup()
        actions.do_prune_backups()


def trigger_erasure_recorded():
    from enclave.backups import actions

    actions.do_record_erasure("member", 1, account_id=None)


TRIGGERS = {
    AuditEventType.BACKUP_CREATED: lambda f: _with_backup(lambda a, b: None),
    AuditEventType.BACKUP_VERIFIED: lambda f: _with_backup(
        lambda a, b: a.do_verify_backup(b.backup_id)),
    AuditEventType.BACKUP_RESTORED: lambda f: trigger_restored(f["tmp_path"]),
    AuditEventType.BACKUP_EXPUNGED: lambda f: trigger_expunged(),
    AuditEventType.BACKUP_DRILL_RUN: lambda f: _with_backup(
        lambda a, b: a.do_run_restore_drill()),
    AuditEventType.ERASURE_TOMBSTONE_RECORDED: lambda f: trigger_erasure_recorded(),
}
