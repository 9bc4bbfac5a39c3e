"""Reading the live database into a backup stream and writing a stream into a new database.

SQLite: the online backup API copies the live database into a private temporary file (a
0700 directory under the var dir), excluded tables are emptied (``secure_delete``), the
copy is streamed into the encryptor and deleted. SQLite needs this temporary plaintext
copy; PostgreSQL does not: ``pg_dump --format=custom`` streams from its stdout straight
into the encryptor, under an exported snapshot so the row counts match the dump exactly.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from django.db import connection, connections

from enclave.backups.container import CHUNK_SIZE
from enclave.backups.errors import BackupError, BackupRefused

# Rows never copied into a backup: erasure tombstones (kept outside backups so they
# outlive them), and the backup catalog and drill history (they describe the target, not
# the data). Their tables (schema) are still in the backup. Backup keys are not in the
# database at all (``keystore``).
EXCLUDED_TABLES = ("backups_erasuretombstone", "backups_backup", "backups_restoredrill")
PG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def engine() -> str:
    """``sqlite`` or ``postgresql`` — the live database's engine."""
    return connection.vendor


def _quote(table: str) -> str:
    return '"' + table.replace('"', '""') + '"'


# ---------------------------------------------------------------------------- dumping

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_snapshots(workdir: Path) -> list[Path]:
    """Delete plaintext snapshots left by a backup process that was killed (SIGKILL, power
    loss): their directory names carry the pid, and that process is gone."""
    removed = []
    for path in workdir.glob("enclave-backup-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def dump_sqlite(write: Callable[[bytes], None], workdir: Path) -> dict[str, int]:
    """Stream a consistent copy of the live SQLite database; return row counts per table."""
    if connection.in_atomic_block:
        # The online backup API would wait forever on our own open write transaction.
        raise BackupRefused("a SQLite backup cannot run inside an open transaction")
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale_snapshots(workdir)
    tmp = Path(tempfile.mkdtemp(prefix=f"enclave-backup-{os.getpid()}-", dir=workdir))  # 0700
    try:
        path = tmp / "snapshot.sqlite3"
        copy = sqlite3.connect(path)
        try:
            connection.ensure_connection()
            connection.connection.backup(copy)
            copy.execute("PRAGMA secure_delete=ON")
            tables = [r[0] for r in copy.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            for table in EXCLUDED_TABLES:
                if table in tables:
                    copy.execute(f"DELETE FROM {_quote(table)}")  # noqa: S608 — fixed names
            copy.commit()
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("VACUUM")
            counts = {t: copy.execute(f"SELECT COUNT(*) FROM {_quote(t)}").fetchone()[0]  # noqa: S608
                      for t in tables}
        finally:
            copy.close()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                write(chunk)
        return counts
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pg_conninfo(settings_dict: dict, dbname: str | None = None) -> dict:
    info = {"dbname": dbname or settings_dict["NAME"], "user": settings_dict.get("USER") or None,
            "host": settings_dict.get("HOST") or None,
            "port": str(settings_dict["PORT"]) if settings_dict.get("PORT") else None,
            "password": settings_dict.get("PASSWORD") or None}
    return {k: v for k, v in info.items() if v is not None}


def _pg_args(info: dict) -> tuple[list[str], dict]:
    args = []
    for key, flag in (("host", "--host"), ("port", "--port"), ("user", "--username")):
        if key in info:
            args += [flag, info[key]]
    env = dict(os.environ)
    if "password" in info:
        env["PGPASSWORD"] = info["password"]
    return args, env


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found on PATH (install the PostgreSQL client)")
    return path


def _tail(stream) -> str:
    stream.seek(0)
    lines = stream.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


# pg_dump's stdout pipe is widened so it keeps dumping while a chunk is being encrypted
# and stored (the default 64 KiB pipe stalls it); above /proc/sys/fs/pipe-max-size
# (1 MiB by default) needs CAP_SYS_RESOURCE, so smaller sizes are tried next.
PIPE_SIZES = (8 * CHUNK_SIZE, CHUNK_SIZE)


def _widen_pipe(fd: int) -> None:
    for size in PIPE_SIZES:
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
            return
        except OSError:
            continue


def _pump(source, write: Callable[[memoryview], None]) -> None:
    """Copy ``source`` (a raw pipe) into ``write`` in whole CHUNK_SIZE pieces, through one
    reused buffer (``write`` must not keep what it is given)."""
    view = memoryview(bytearray(CHUNK_SIZE))
    filled = 0
    while n := source.readinto(view[filled:]):
        filled += n
        if filled == CHUNK_SIZE:
            write(view)
            filled = 0
    if filled:
        write(view[:filled])


def dump_postgres(write: Callable[[bytes], None]) -> dict[str, int]:
    """Stream ``pg_dump --format=custom`` of the live database (nothing staged on disk)."""
    import psycopg

    info = pg_conninfo(connection.settings_dict)
    with psycopg.connect(**info) as snap:
        snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap.read_only = True
        snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()[0]
        tables = [r[0] for r in snap.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        counts = {t: (0 if t in EXCLUDED_TABLES else
                      snap.execute(f"SELECT COUNT(*) FROM {_quote(t)}").fetchone()[0])  # noqa: S608
                  for t in tables}
        args, env = _pg_args(info)
        excluded = [f"--exclude-table-data={t}" for t in EXCLUDED_TABLES]
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(  # noqa: S603 — resolved PostgreSQL client, no shell
                [_program("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snapshot}", *excluded, *args, "--dbname", info["dbname"]],
                stdout=subprocess.PIPE, stderr=errors, env=env, bufsize=0)
            try:
                _widen_pipe(proc.stdout.fileno())
                _pump(proc.stdout, write)
            finally:
                proc.stdout.close()
                code = proc.wait()
            if code:
                raise BackupError(f"pg_dump failed: {_tail(errors)}")
        snap.rollback()
    return counts


# --------------------------------------------------------------------------- restoring

def _write_file(path: Path, chunks: Iterable[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise BackupError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_sqlite(dest: Path, chunks: Iterable[bytes]) -> Iterator[Path]:
    """Write the restored database next to ``dest`` (which must not exist) and yield the
    staging path; the caller moves it into place. Removed on any failure."""
    dest = Path(dest).resolve()
    if dest.exists():
        raise BackupRefused(f"{dest} already exists; restore into a new file")
    if not dest.parent.is_dir():
        raise BackupRefused(f"directory {dest.parent} does not exist")
    staging = dest.parent / f".{dest.name}.restoring-{secrets.token_hex(4)}"
    _write_file(staging, chunks)
    try:
        yield staging
    finally:
        staging.unlink(missing_ok=True)


def _maintenance_conn():
    import psycopg

    return psycopg.connect(**pg_conninfo(connection.settings_dict, "postgres"),
                           autocommit=True)


def pg_database_exists(name: str) -> bool:
    with _maintenance_conn() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def drop_pg_database(name: str) -> None:
    with _maintenance_conn() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")


def restore_postgres(name: str, chunks: Iterable[bytes]) -> None:
    """Create database ``name`` (must not exist) and ``pg_restore`` the stream into it.

    On any failure the new database is dropped; nothing else is touched.
    """
    if not PG_NAME.match(name):
        raise BackupRefused(f"invalid PostgreSQL database name {name!r} "
                            "(lower-case letters, digits, underscores)")
    if name == connection.settings_dict["NAME"]:
        raise BackupRefused(f"{name} is the live database; use --replace to replace it")
    with _maintenance_conn() as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                        (name,)).fetchone() is not None:
            raise BackupRefused(f"database {name} already exists; restore into a new one")
        conn.execute(f"CREATE DATABASE {_quote(name)}")
    info = pg_conninfo(connection.settings_dict, name)
    args, env = _pg_args(info)
    try:
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(  # noqa: S603 — resolved PostgreSQL client, no shell
                [_program("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", *args,
                 "--dbname", name], stdin=subprocess.PIPE, stderr=errors, env=env)
            try:
                for chunk in chunks:
                    proc.stdin.write(chunk)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if proc.wait():
                raise BackupError(f"pg_restore failed: {_tail(errors)}")
    except BaseException:
        drop_pg_database(name)
        raise


def swap_pg_database(restored: str) -> str:
    """Make ``restored`` the live database: the live one is renamed to
    ``<live>_before_<suffix>`` (kept until the operator drops it) and ``restored`` takes
    its name. Other sessions on the live database are terminated. Returns the old name."""
    live = connection.settings_dict["NAME"]
    previous = f"{live[:40]}_before_{secrets.token_hex(4)}"
    connection.close()
    with _maintenance_conn() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (live,))
        conn.execute(f"ALTER DATABASE {_quote(live)} RENAME TO {_quote(previous)}")
        try:
            conn.execute(f"ALTER DATABASE {_quote(restored)} RENAME TO {_quote(live)}")
        except Exception:
            conn.execute(f"ALTER DATABASE {_quote(previous)} RENAME TO {_quote(live)}")
            raise
    return previous


# ------------------------------------------------------------- working on a restored DB

@contextlib.contextmanager
def open_database(name: str) -> Iterator:
    """A temporary Django connection (not registered in ``connections``) to a restored
    database (SQLite file path or PostgreSQL database name). Closed on exit."""
    from django.db.utils import load_backend

    params = dict(connections.settings["default"])
    params["NAME"] = str(name)
    if connection.vendor == "sqlite":
        params["OPTIONS"] = {}
    params["TEST"] = {**params.get("TEST", {}), "NAME": str(name)}
    conn = load_backend(params["ENGINE"]).DatabaseWrapper(
        params, f"backups_{secrets.token_hex(4)}")
    try:
        yield conn
    finally:
        conn.close()


def advance_id_sequence(conn, table: str, top: int) -> int:
    """Make the next id that ``table`` (in the database behind ``conn``) hands out
    greater than ``top``; never lowers it. Returns 1 if the sequence moved, else 0."""
    with conn.cursor() as cur:
        if conn.vendor == "postgresql":
            cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f'"{table}"'])
            sequence = cur.fetchone()[0]
            if sequence is None:
                return 0
            cur.execute("SELECT COALESCE(pg_sequence_last_value(%s::regclass), 0)",
                        [sequence])
            if cur.fetchone()[0] >= top:
                return 0
            cur.execute("SELECT setval(%s::regclass, %s)", [sequence, top])
            return 1
        # SQLite: Django's AutoField columns are AUTOINCREMENT, so sqlite_sequence holds
        # the largest id ever handed out; new ids continue after it.
        cur.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cur.fetchone()
        if row is not None and row[0] >= top:
            return 0
        if row is None:
            cur.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)",
                        [table, top])
        else:
            cur.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [top, table])
        return 1


def count_rows(conn, tables: Iterable[str]) -> dict[str, int]:
    with conn.cursor() as cur:
        out = {}
        for table in tables:
            cur.execute(f"SELECT COUNT(*) FROM {_quote(table)}")  # noqa: S608 — catalog names
            out[table] = cur.fetchone()[0]
        return out


def table_names(conn) -> list[str]:
    return sorted(conn.introspection.table_names())
