"""``enclave backup ...`` as an operator runs it: real subprocesses on a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.backups.deployment import ENCLAVE, migrated_deployment


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> dict:
    """A migrated SQLite deployment in its own var dir, with one member."""
    return migrated_deployment(tmp_path_factory.mktemp("cli") / "var", "cli@example.com",
                               "Cli")


def enclave(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ENCLAVE, "backup", *args], env=env, capture_output=True,
                          text=True, timeout=300)


class TestCommands:
    def test_create_list_verify_restore(self, deployment, tmp_path):
        created = json.loads(enclave(deployment, "create", "--json").stdout)
        listed = json.loads(enclave(deployment, "list", "--json").stdout)
        assert created["id"] in [b["id"] for b in listed["backups"]]
        assert enclave(deployment, "verify", created["id"]).returncode == 0
        out = tmp_path / "restored.sqlite3"
        result = enclave(deployment, "restore", created["id"], "--to", str(out), "--json")
        assert result.returncode == 0, result.stderr
        emails = [r[0] for r in sqlite3.connect(out).execute("SELECT email FROM identity_member")]
        assert emails == ["cli@example.com"]

    def test_unknown_id_is_one_line_and_exit_2(self, deployment):
        result = enclave(deployment, "verify", "20260101T000000000000Z-ffffff")
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("enclave: backup: no complete backup")

    def test_replace_without_confirmation_changes_nothing(self, deployment):
        created = json.loads(enclave(deployment, "create", "--json").stdout)
        live = Path(deployment["ENCLAVE_VAR_DIR"]) / "data" / "enclave.sqlite3"
        before = live.read_bytes()
        result = subprocess.run([*ENCLAVE, "backup", "restore", created["id"], "--replace"],
                                env=deployment, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120)
        assert result.returncode == 2
        assert "not confirmed" in result.stderr
        assert live.read_bytes() == before

    def test_prune_dry_run_and_drill(self, deployment):
        enclave(deployment, "create")
        plan = json.loads(enclave(deployment, "prune", "--dry-run", "--json").stdout)
        assert plan["dry_run"] is True
        assert plan["expunge"] == []
        drill = enclave(deployment, "drill", "--json")
        assert drill.returncode == 0, drill.stdout + drill.stderr
        assert json.loads(drill.stdout)["succeeded"] is True


class TestInterruptedBackup:
    def test_sigkill_during_backup_leaves_nothing_complete(self, deployment, tmp_path):
        var = Path(deployment["ENCLAVE_VAR_DIR"])
        db = sqlite3.connect(var / "data" / "enclave.sqlite3")
        db.execute("CREATE TABLE IF NOT EXISTS bulk (b BLOB)")
        db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                   "WHERE i < 300) INSERT INTO bulk SELECT randomblob(1048576) FROM n")
        db.commit()
        db.close()
        backups = var / "backups"
        # A backup killed by another test leaves its own small data.enc.part behind (prune
        # removes it later): watch only the part file of the backup started here.
        earlier = set(backups.glob("*/data.enc.part"))
        log = tmp_path / "stderr"
        with log.open("wb") as stderr:  # a file, not a pipe: progress output never blocks it
            proc = subprocess.Popen([*ENCLAVE, "backup", "create"], env=deployment,
                                    stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            parts = [p for p in backups.glob("*/data.enc.part") if p not in earlier]
            if parts and parts[0].stat().st_size > 8 * 1024 * 1024:
                break
            time.sleep(0.005)
        else:
            proc.kill()
            proc.wait()
            pytest.fail(f"the backup was not seen streaming (exit {proc.returncode}): "
                        f"{log.read_text(errors='replace')[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted = parts[0].parent.name
        listed = json.loads(enclave(deployment, "list", "--json").stdout)
        assert interrupted not in [b["id"] for b in listed["backups"]]
        assert not (backups / interrupted / "manifest.json").exists()
        result = enclave(deployment, "verify", interrupted)
        assert result.returncode == 2
        assert "no complete backup" in result.stderr

    def test_next_backup_removes_plaintext_snapshot_of_killed_one(self, deployment):
        var = Path(deployment["ENCLAVE_VAR_DIR"])
        proc = subprocess.Popen([*ENCLAVE, "backup", "create"], env=deployment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        snapshots = var / "backup-tmp"
        deadline = time.monotonic() + 120
        while not list(snapshots.glob("enclave-backup-*/snapshot.sqlite3")):
            assert time.monotonic() < deadline, "no snapshot appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert enclave(deployment, "create").returncode == 0
        assert list(snapshots.glob("enclave-backup-*")) == []


@pytest.fixture(scope="module")
def pg_deployment(tmp_path_factory):
    """A migrated PostgreSQL deployment (a fresh database, dropped afterwards)."""
    import secrets

    psycopg = pytest.importorskip("psycopg")
    from enclave.testing.plugin import POSTGRES_HOST, POSTGRES_PORT, postgres_reachable

    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    name = f"enclave_cli_{secrets.token_hex(4)}"
    admin = {"host": POSTGRES_HOST, "port": POSTGRES_PORT, "user": "postgres",
             "autocommit": True}
    with psycopg.connect(dbname="postgres", **admin) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    var = tmp_path_factory.mktemp("cli-pg") / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(var),
                "ENCLAVE_BACKUP_DIR": str(var / "backups"),
                "ENCLAVE_DATABASE_URL":
                    f"postgres://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"})
    subprocess.run([*ENCLAVE, "manage", "migrate", "-v0"], env=env, check=True, timeout=300)
    with psycopg.connect(dbname=name, **admin) as conn:
        conn.execute("CREATE TABLE bulk (b bytea)")
        conn.execute("INSERT INTO bulk SELECT decode(string_agg(md5(random()::text), ''), "
                     "'hex') FROM generate_series(1, 2000000) g GROUP BY g % 4000")  # ~32 MB random
    yield env
    with psycopg.connect(dbname="postgres", **admin) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class TestInterruptedPostgresBackup:
    def test_sigkill_during_pg_backup_leaves_nothing_complete(self, pg_deployment):
        backups = Path(pg_deployment["ENCLAVE_VAR_DIR"]) / "backups"
        proc = subprocess.Popen([*ENCLAVE, "backup", "create"], env=pg_deployment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            parts = list(backups.glob("*/data.enc.part"))
            if parts and parts[0].stat().st_size > 2 * 1024 * 1024:
                break  # pg_dump is streaming: a few encrypted chunks are written
            assert time.monotonic() < deadline, "the backup never started streaming"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted = parts[0].parent.name
        listed = json.loads(enclave(pg_deployment, "list", "--json").stdout)
        assert interrupted not in [b["id"] for b in listed["backups"]]
        assert enclave(pg_deployment, "verify", interrupted).returncode == 2

    def test_pg_backup_round_trip_through_the_cli(self, pg_deployment):
        created = enclave(pg_deployment, "create", "--json")
        assert created.returncode == 0, created.stderr
        drill = enclave(pg_deployment, "drill", "--json")
        assert json.loads(drill.stdout)["succeeded"] is True, drill.stdout
