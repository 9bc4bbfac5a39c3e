"""Every backup state change: create, verify, restore, prune, drill, record an erasure.

Each action writes its audit event (700–799) in one transaction with its catalog rows.
Long work (dumping, streaming, restoring) runs outside transactions; the catalog row is
written only once the backup is complete on the target.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from enclave.access import personal_data
from enclave.backups import (
    container,
    databases,
    keystore,
    privacy,
    retention,
    services,
    tombstones,
)
from enclave.backups.errors import BackupCorrupt, BackupError, BackupRefused
from enclave.backups.models import Backup, ErasureTombstone, RestoreDrill
from enclave.backups.progress import Progress, reading
from enclave.config import LIVE_ENVIRONMENTS
from enclave.core import audit, clock
from enclave.core.models import AuditEventType

# Keys and partial uploads of backups that never completed are cleaned after this long.
ORPHAN_GRACE = dt.timedelta(days=1)


def _data_key(backup_id: str) -> bytes:
    """The backup's data key, unwrapped by the KEK. Raises BackupRefused when it was
    destroyed (expunged) and BackupCorrupt when it cannot be unwrapped (wrong key)."""
    return keystore.load(backup_id)


def _schema_version() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        latest[app] = max(latest.get(app, ""), name)
    return latest


@contextlib.contextmanager
def _scratch_dir():
    """A private (0700) temporary directory under the var dir, removed afterwards."""
    root = settings.CONFIG.var_dir / "backup-tmp"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="enclave-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _environment() -> str:
    """The environment a new backup records (its manifest is authenticated)."""
    return settings.CONFIG.env


def _new_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC).strftime(retention.ID_FORMAT)}-{secrets.token_hex(3)}"


def _counting_sink(write, progress: Progress):
    stored = 0

    def sink(data: bytes) -> None:
        nonlocal stored
        write(data)
        stored += len(data)
        progress("backup", stored, None)
    return sink


def do_create_backup(*, actor=None, target=None, progress: Progress | None = None) -> Backup:
    """Dump, encrypt, upload, read back and verify, then commit the manifest.

    ``progress(phase, done, total)`` is told the bytes stored and read back. Returns the
    catalog row. Raises BackupError (target unreachable, dump failed); an
    interrupted backup leaves no manifest, so it never looks complete.
    """
    cfg = settings.CONFIG
    target = target or services.get_target()
    started, t0 = clock.now(), time.monotonic()
    backup_id = _new_id(started)
    key = AESGCM.generate_key(bit_length=256)
    kek_id = keystore.store(backup_id, key, environment=_environment())
    upload = None
    try:
        upload = target.open_upload(backup_id)
        sink = upload.write if progress is None else _counting_sink(upload.write, progress)
        writer = container.ChunkWriter(sink, key, backup_id)
        if databases.engine() == "sqlite":
            counts = databases.dump_sqlite(writer.write, cfg.var_dir / "backup-tmp")
        else:
            counts = databases.dump_postgres(writer.write)
        writer.close()
        upload.commit()
    except BaseException:
        if upload is not None:
            with contextlib.suppress(Exception):
                upload.abort()
        keystore.destroy(backup_id)
        raise
    # Read back what the target holds before declaring the backup complete.
    with contextlib.closing(reading(target.open_data(backup_id, staged=True), progress,
                                    "read-back", writer.stored_bytes)) as stream:
        size, digest, chunks = container.verify_stream(stream, key, backup_id)
    if (size, digest) != (writer.plaintext_bytes, writer.sha256):
        raise BackupCorrupt(f"backup {backup_id}: read-back does not match what was written")
    header = {"id": backup_id, "created_at": started.isoformat(), "environment": _environment(),
              "engine": databases.engine(), "key_id": f"{kek_id}:{backup_id}"}
    body = {"schema_version": _schema_version(), "plaintext_bytes": size,
            "plaintext_sha256": digest, "stored_bytes": writer.stored_bytes,
            "chunks": chunks, "chunk_size": container.CHUNK_SIZE, "row_counts": counts}
    target.put_manifest(backup_id, container.seal_manifest(header, body, key))
    with transaction.atomic():
        row = Backup.objects.create(
            backup_id=backup_id, created_at=started, environment=header["environment"],
            target=target.describe(), engine=header["engine"], plaintext_bytes=size,
            stored_bytes=writer.stored_bytes, plaintext_sha256=digest,
            duration_seconds=time.monotonic() - t0)
        audit.record(AuditEventType.BACKUP_CREATED, actor=actor, target_type="backup",
                     target_id=backup_id, extra={"bytes": writer.stored_bytes,
                                                 "target": target.describe()})
    return row


def verify_backup(backup_id: str, *, target=None, progress: Progress | None = None) -> dict:
    """Authenticate the manifest and every chunk; return the manifest. No writes.

    Raises BackupNotFound, BackupRefused (key destroyed), BackupCorrupt (naming the chunk).
    """
    target = target or services.get_target()
    raw = target.read_manifest(backup_id)
    container.read_header(raw, backup_id)
    key = _data_key(backup_id)
    manifest = container.open_manifest(raw, key, backup_id)
    with contextlib.closing(reading(target.open_data(backup_id), progress, "verify",
                                    manifest.get("stored_bytes"))) as stream:
        size, digest, chunks = container.verify_stream(stream, key, backup_id)
    if (size, digest, chunks) != (manifest["plaintext_bytes"], manifest["plaintext_sha256"],
                                  manifest["chunks"]):
        raise BackupCorrupt(f"backup {backup_id}: data does not match its manifest")
    return manifest


def do_verify_backup(backup_id: str, *, actor=None, target=None,
                     progress: Progress | None = None) -> dict:
    manifest = verify_backup(backup_id, target=target, progress=progress)
    with transaction.atomic():
        audit.record(AuditEventType.BACKUP_VERIFIED, actor=actor, target_type="backup",
                     target_id=backup_id)
    return manifest


def _check_environment(manifest: dict, *, anonymize: bool) -> None:
    here, there = settings.CONFIG.env, manifest["environment"]
    if there == here:
        return
    if anonymize and here not in LIVE_ENVIRONMENTS:
        return
    if there in LIVE_ENVIRONMENTS and here not in LIVE_ENVIRONMENTS:
        raise BackupRefused(f"backup {manifest['id']} is from {there}; restoring it into "
                            f"{here} needs --anonymize")
    raise BackupRefused(f"backup {manifest['id']} is from {there}, this deployment is {here}")


def _plaintext(backup_id: str, key: bytes, target, progress: Progress | None = None,
               total: int | None = None):
    with contextlib.closing(reading(target.open_data(backup_id), progress, "restore",
                                    total)) as stream:
        yield from container.iter_plaintext(stream, key, backup_id)


def _prepare(conn, *, anonymize: bool) -> dict:
    erased = tombstones.all_tombstones()
    result = {"erasures_reapplied": privacy.apply_tombstones(conn, erased),
              "rows_anonymized": privacy.anonymize(conn) if anonymize else 0}
    # New rows must never take an erased subject's id (later restores erase by id).
    privacy.reserve_erased_ids(conn, erased)
    return result


def _copy_kept_tables(conn) -> None:
    """Carry the live rows of the tables never backed up (keys, tombstones, catalog)
    into the restored database, so a replace does not lose them — and move their id
    sequences past the copied rows."""
    for table in databases.EXCLUDED_TABLES:
        with connection.cursor() as src:
            src.execute(f'SELECT * FROM "{table}"')  # noqa: S608 — fixed names
            columns = [c[0] for c in src.description]
            rows = src.fetchall()
        with conn.cursor() as dst:
            dst.execute(f'DELETE FROM "{table}"')  # noqa: S608
            if rows:
                cols = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join(["%s"] * len(columns))
                dst.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)  # noqa: S608
        if rows:
            # The rows keep their ids; the restored sequence is the one of the backup's
            # time (PostgreSQL), so without this the next backup or erasure tombstone
            # would collide with a copied row.
            databases.advance_id_sequence(conn, table, max(r[columns.index("id")]
                                                           for r in rows))


def _replace_live_sqlite(staging: Path) -> None:
    import sqlite3

    source = sqlite3.connect(staging)
    try:
        connection.ensure_connection()
        # The online backup API replaces the live database's pages in one step.
        source.backup(connection.connection)
    finally:
        source.close()


def restore_into(backup_id: str, destination: str, *, key: bytes, target,
                 anonymize: bool = False, replace: bool = False, keep=None, check=None,
                 progress: Progress | None = None, total: int | None = None) -> dict:
    """Write a verified backup into ``destination`` (a new SQLite file or PostgreSQL
    database), re-apply erasures, optionally anonymise. ``check(conn)`` may inspect the
    data as it was backed up (before erasures are re-applied), ``keep(conn)`` the result
    before it is put in place; each returns a dict merged into the result. With
    ``replace`` the live SQLite database is replaced instead (``destination`` is then a
    staging file path)."""
    result: dict = {}
    chunks = _plaintext(backup_id, key, target, progress, total)
    if databases.engine() == "sqlite":
        with databases.staged_sqlite(Path(destination), chunks) as staging:
            with databases.open_database(staging) as conn:
                if check:
                    result.update(check(conn))
                result.update(_prepare(conn, anonymize=anonymize))
                if replace:
                    _copy_kept_tables(conn)
                if keep:
                    result.update(keep(conn))
            if replace:
                _replace_live_sqlite(staging)
            else:
                staging.replace(destination)
        return result
    if replace:
        destination = f"{connection.settings_dict['NAME'][:40]}_restore_{secrets.token_hex(4)}"
    databases.restore_postgres(destination, chunks)
    try:
        with databases.open_database(destination) as conn:
            if check:
                result.update(check(conn))
            result.update(_prepare(conn, anonymize=anonymize))
            if replace:
                _copy_kept_tables(conn)
            if keep:
                result.update(keep(conn))
        if replace:
            result["previous_database"] = databases.swap_pg_database(destination)
    except BaseException:
        databases.drop_pg_database(destination)
        raise
    return result


def do_restore_backup(backup_id: str, *, to: str | None = None, replace: bool = False,
                      anonymize: bool = False, actor=None, target=None,
                      progress: Progress | None = None) -> dict:
    """Verify every chunk first, then restore into ``to`` (new SQLite path or PostgreSQL
    database name), or replace the live database when ``replace`` (confirmed by the CLI).

    Raises BackupNotFound / BackupCorrupt / BackupRefused; the live database is untouched
    unless ``replace`` and every step before the final swap succeeded.
    """
    if bool(to) == bool(replace):
        raise BackupRefused("give exactly one of --to DESTINATION or --replace")
    target = target or services.get_target()
    manifest = verify_backup(backup_id, target=target, progress=progress)
    _check_environment(manifest, anonymize=anonymize)
    if manifest["engine"] != databases.engine():
        raise BackupRefused(f"backup {backup_id} is a {manifest['engine']} backup; the live "
                            f"database is {databases.engine()}")
    key = _data_key(backup_id)
    with _scratch_dir() as scratch:
        destination = str(scratch / "replace.sqlite3") if replace else to
        result = restore_into(backup_id, destination, key=key, target=target,
                              anonymize=anonymize, replace=replace, progress=progress,
                              total=manifest.get("stored_bytes"))
    with transaction.atomic():
        audit.record(AuditEventType.BACKUP_RESTORED, actor=actor, target_type="backup",
                     target_id=backup_id, extra={"replace": replace, "anonymize": anonymize,
                                                 **result})
    return {"backup": backup_id, "destination": "live" if replace else to, **result}


def do_record_erasure(subject: str, object_id: int, *, account_id: int | None,
                      row_key: str = "", actor=None) -> ErasureTombstone:
    """Remember that ``subject`` ``object_id`` (the row with ``row_key``,
    ``access.personal_data.row_key_of``) was erased, so every later restore erases it
    again: a row (same transaction as the erasure) and, after commit, a journal line in
    the secrets directory (``backups.tombstones``). Called by the erasing action."""
    with transaction.atomic():
        row, created = ErasureTombstone.objects.get_or_create(
            subject=subject, object_id=int(object_id), row_key=row_key,
            defaults={"account_id": account_id, "erased_at": clock.now()})
        if created:
            tombstones.append_after_commit((subject, account_id, int(object_id), row_key))
            audit.record(AuditEventType.ERASURE_TOMBSTONE_RECORDED, actor=actor,
                         account_id=account_id, target_type="erasure_tombstone",
                         target_id=row.pk, extra={"subject": subject,
                                                  "object_id": int(object_id)})
    return row


def do_prune_backups(*, dry_run: bool = False, actor=None, target=None) -> dict:
    """Apply the retention policy: expunge (destroy the data key, then delete from the
    target) every backup the policy drops; clean orphans of interrupted backups.

    Returns {"keep": [...], "expunge": [...], "incomplete": [...], "dry_run": bool}.
    """
    cfg = settings.CONFIG
    target = target or services.get_target()
    now = clock.now()
    ids = target.list_ids()
    keep, expunge = retention.plan(ids, now, cfg.backup_thinning)
    stale = [i for i in target.list_incomplete()
             if (created := retention.created_from_id(i)) and now - created > ORPHAN_GRACE]
    limit = now - dt.timedelta(days=retention.EXPUNGE_AFTER_DAYS)
    orphan_keys = [k for k in keystore.stored().items()
                   if k[0] not in ids and (k[1] < limit or now - k[1] > ORPHAN_GRACE)]
    result = {"keep": keep, "expunge": expunge, "incomplete": stale,
              "orphan_keys": [k[0] for k in orphan_keys], "dry_run": dry_run}
    if dry_run:
        return result
    for backup_id in expunge:
        with transaction.atomic():
            # Key first: even if the delete below fails, every copy is already unreadable.
            keystore.destroy(backup_id)
            Backup.objects.filter(backup_id=backup_id).update(expunged_at=now)
            audit.record(AuditEventType.BACKUP_EXPUNGED, actor=actor, target_type="backup",
                         target_id=backup_id)
        target.delete(backup_id)
    for backup_id in stale:
        target.delete(backup_id)
    for backup_id in result["orphan_keys"]:
        keystore.destroy(backup_id)
    return result


def _drill_checks(conn, manifest: dict) -> dict:
    problems = []
    # Raw SQL: the restored database is not a registered connection the ORM could use.
    with conn.cursor() as cur:
        cur.execute("SELECT app, name FROM django_migrations")
        applied = {tuple(r) for r in cur.fetchall()}
    known = set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
    unknown = applied - known
    pending = known - applied
    if unknown:
        problems.append("migrations unknown to this code: " + ", ".join(
            f"{a}.{n}" for a, n in sorted(unknown)[:5]))
    counts = databases.count_rows(conn, manifest["row_counts"])
    wrong = {t: (n, counts[t]) for t, n in manifest["row_counts"].items() if counts[t] != n}
    if wrong:
        problems.append("row counts differ: " + ", ".join(
            f"{t} {a}!={b}" for t, (a, b) in sorted(wrong.items())))
    if conn.vendor == "sqlite":
        with conn.cursor() as cur:
            cur.execute("PRAGMA integrity_check")
            verdict = cur.fetchone()[0]
        if verdict != "ok":
            problems.append(f"integrity_check: {verdict}")
    return {"pending_migrations": len(pending), "tables": len(counts), "problems": problems}


def _erasure_checks(conn) -> dict:
    """After erasures were re-applied: no tombstoned subject whose rows are deleted
    (people) is left (members are scrubbed in place, so they stay)."""
    problems, erased = [], 0
    for subject, targets in tombstones.all_tombstones().items():
        erased += len(targets)
        deletes_own = any(link.column == "id" and link.action == "delete"
                          for _, link, _ in personal_data.erasure_steps(subject))
        left = personal_data.present(conn, subject, targets) if deletes_own else []
        if left:
            problems.append(f"{len(left)} erased {subject}(s) still present")
    return {"erasure_problems": problems, "erased": erased}


def _drill(backup_id: str, target, scratch_dir: Path, pg_name: str,
           progress: Progress | None = None) -> tuple[bool, str]:
    try:
        if not backup_id:
            raise BackupRefused("no complete backup on the target")
        manifest = verify_backup(backup_id, target=target, progress=progress)
        destination = (str(scratch_dir / "drill.sqlite3") if databases.engine() == "sqlite"
                       else pg_name)
        checks: dict = {}
        restore_into(backup_id, destination, key=_data_key(backup_id), target=target,
                     progress=progress, total=manifest.get("stored_bytes"),
                     check=lambda conn: checks.update(_drill_checks(conn, manifest)) or {},
                     keep=lambda conn: checks.update(_erasure_checks(conn)) or {})
    except BackupError as exc:
        return False, str(exc)
    finally:
        if databases.engine() == "postgresql":
            with contextlib.suppress(Exception):
                databases.drop_pg_database(pg_name)
    problems = checks["problems"] + checks["erasure_problems"]
    if problems:
        return False, "; ".join(problems)
    return True, (f"{checks['tables']} tables match the manifest; "
                  f"{checks['pending_migrations']} migrations pending; "
                  f"{checks['erased']} erased subject(s) checked gone")


def do_run_restore_drill(*, actor=None, target=None,
                         progress: Progress | None = None) -> RestoreDrill:
    """Restore the latest backup into a scratch database, check it, record the result and
    the time it took (RTO), and remove the scratch database."""
    target = target or services.get_target()
    started, t0 = clock.now(), time.monotonic()
    ids = target.list_ids()
    backup_id = max(ids) if ids else ""
    pg_name = f"enclave_drill_{secrets.token_hex(4)}"
    with _scratch_dir() as scratch_dir:
        ok, detail = _drill(backup_id, target, scratch_dir, pg_name, progress)
    with transaction.atomic():
        drill = RestoreDrill.objects.create(backup_id=backup_id, started_at=started,
                                            rto_seconds=time.monotonic() - t0,
                                            succeeded=ok, detail=detail[:2000])
        audit.record(AuditEventType.BACKUP_DRILL_RUN, actor=actor, target_type="backup",
                     target_id=backup_id, extra={"succeeded": ok,
                                                 "rto_seconds": drill.rto_seconds})
    return drill
