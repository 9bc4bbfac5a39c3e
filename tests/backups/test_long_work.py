"""Long backup work from the CLI: progress lines on stderr, and a restore that runs out of
disk space (a real 1 MiB tmpfs, not a simulated error)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.backups.deployment import ENCLAVE, migrated_deployment


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> dict:
    """A migrated SQLite deployment holding ~3 MiB of data, with one backup."""
    var = tmp_path_factory.mktemp("long") / "var"
    env = migrated_deployment(var, "long@example.com", "Long")
    db = sqlite3.connect(var / "data" / "enclave.sqlite3")
    db.execute("CREATE TABLE bulk (b BLOB)")
    db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
               "WHERE i < 3) INSERT INTO bulk SELECT randomblob(1048576) FROM n")
    db.commit()
    db.close()
    created = enclave(env, "create", "--json")
    assert created.returncode == 0, created.stderr
    env["BACKUP_ID"] = json.loads(created.stdout)["id"]
    return env


def enclave(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ENCLAVE, "backup", *args], env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def live_digest(env: dict) -> str:
    path = Path(env["ENCLAVE_VAR_DIR"]) / "data" / "enclave.sqlite3"
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def small_disk(path: Path):
    """A real 1 MiB tmpfs mounted at ``path`` (unmounted afterwards)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                                  str(path)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount(8) here: cannot make a small tmpfs to fill up")
    if mounted.returncode:
        pytest.skip("mounting a 1 MiB tmpfs is not permitted here (needs root / "
                    f"CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True, timeout=30)


class TestProgress:
    def test_create_with_progress_writes_lines_to_stderr_and_valid_json(self, deployment):
        result = enclave(deployment, "create", "--json", "--progress")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["stored_bytes"] > 3 * 1024 * 1024
        lines = result.stderr.splitlines()
        assert any(line.startswith("backup: ") and line.endswith("/s") for line in lines)
        assert any(line.startswith("read-back: ") and "(100%)" in line for line in lines)

    def test_restore_with_progress_reports_verify_and_restore(self, deployment, tmp_path):
        result = enclave(deployment, "restore", deployment["BACKUP_ID"], "--to",
                         str(tmp_path / "r.sqlite3"), "--json", "--progress")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["backup"] == deployment["BACKUP_ID"]
        phases = {line.split(":")[0] for line in result.stderr.splitlines()}
        assert phases == {"verify", "restore"}

    def test_verify_and_drill_with_progress_keep_stdout_json(self, deployment):
        verify = enclave(deployment, "verify", deployment["BACKUP_ID"], "--json", "--progress")
        drill = enclave(deployment, "drill", "--json", "--progress")
        assert json.loads(verify.stdout)["ok"] is True
        assert json.loads(drill.stdout)["succeeded"] is True, drill.stdout
        assert "verify: " in verify.stderr
        assert "restore: " in drill.stderr

    def test_no_progress_without_flag_when_stderr_is_not_a_terminal(self, deployment):
        result = enclave(deployment, "verify", deployment["BACKUP_ID"], "--json")
        assert result.returncode == 0
        assert result.stderr == ""


class TestDiskFull:
    def test_restore_onto_full_disk_fails_in_one_line_and_leaves_nothing(self, deployment,
                                                                         tmp_path):
        before = live_digest(deployment)
        with small_disk(tmp_path / "small") as small:
            result = enclave(deployment, "restore", deployment["BACKUP_ID"],
                             "--to", str(small / "restored.sqlite3"))
            left = sorted(small.iterdir())
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("enclave: backup: cannot write ")
        assert "No space left on device" in result.stderr
        assert left == []
        assert live_digest(deployment) == before

    def test_replace_with_full_scratch_disk_leaves_live_database_untouched(self, deployment):
        before = live_digest(deployment)
        scratch = Path(deployment["ENCLAVE_VAR_DIR"]) / "backup-tmp"
        with small_disk(scratch):
            result = enclave(deployment, "restore", deployment["BACKUP_ID"], "--replace",
                             "--yes")
            left = sorted(scratch.iterdir())
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert "No space left on device" in result.stderr
        assert left == []
        assert live_digest(deployment) == before
