"""The scheduled dependency audit (daily and at start) and what DEP-1 then says."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import pytest

from enclave.core import clock, schedule
from enclave.core.controls import FAIL, PASS
from enclave.core.models import ControlResult
from enclave.scanning.audit import DEFAULT_REQUIREMENTS
from enclave.scanning.models import DependencyAudit
from enclave.scanning.tasks import audit_dependencies, configured_audit
from enclave.testing.live import free_port
from tests.scanning.test_deps_audit import date_source, run_cli, write_advisory, write_lock

TASK = "enclave.scanning.audit_dependencies"


@pytest.fixture
def fresh_advisories(tmp_path) -> Path:
    """An advisory directory dated today whose only advisory names no locked package."""
    root = date_source(tmp_path / "advisories")
    write_advisory(root, "PYSEC-TEST-1", package="enclave-test-demo",
                   events=[{"introduced": "0"}, {"fixed": "1.1"}])
    return root


@pytest.fixture
def stale_advisories(tmp_path) -> Path:
    root = date_source(tmp_path / "stale-advisories", dt.date(2024, 10, 10))
    write_advisory(root, "PYSEC-TEST-2", package="enclave-test-demo",
                   events=[{"introduced": "0"}, {"fixed": "1.1"}])
    return root


@pytest.fixture
def advisory_db(settings):
    """Set ENCLAVE_ADVISORY_DB (as the parsed configuration holds it) for one test."""

    def use(path: Path | None) -> None:
        settings.CONFIG = dataclasses.replace(settings.CONFIG, advisory_db=path)

    return use


@pytest.fixture
def offline(monkeypatch) -> None:
    """No advisory service answers: pip-audit's requests go to a closed local port."""
    proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def dep1_stored() -> ControlResult:
    return ControlResult.objects.get(control_id="DEP-1")


class TestSchedule:
    def test_dependency_audit_runs_daily_and_at_start(self):
        jobs = [job for job in schedule.SCHEDULE if job.task == TASK]
        assert [(job.every_seconds, job.run_at_start) for job in jobs] == [(24 * 3600, True)]

    def test_beat_runs_the_audit_every_24_hours(self):
        assert schedule.beat_schedule()["dependency-audit"] == {"task": TASK,
                                                               "schedule": 86400.0}


class TestStartTrigger:
    def test_enclave_serve_runs_the_audit_in_its_worker_at_start(self, live_enclave):
        database = live_enclave.var_dir / "data" / "enclave.sqlite3"
        rows: list = []
        deadline = time.monotonic() + 120
        while not rows and time.monotonic() < deadline:
            time.sleep(1)
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
                rows = conn.execute("SELECT source FROM scanning_dependencyaudit").fetchall()
        assert rows[:1] == [("pip-audit",)]  # ENCLAVE_ADVISORY_DB is unset there.
        assert live_enclave.process.poll() is None  # the worker (and so serve) lives on


@pytest.mark.django_db
class TestAuditJob:
    def test_fresh_advisory_data_records_a_clean_audit_and_dep1_passes(
            self, advisory_db, fresh_advisories):
        advisory_db(fresh_advisories)
        assert audit_dependencies() == {"status": "clean", "recorded": True,
                                        "id": DependencyAudit.objects.get().pk}
        assert dep1_stored().status == PASS

    def test_job_audits_the_projects_lock(self, advisory_db, fresh_advisories):
        advisory_db(fresh_advisories)
        audit_dependencies()
        row = DependencyAudit.objects.get()
        assert row.summary["requirements"] == str(DEFAULT_REQUIREMENTS)
        assert row.summary["pinned"] > 10

    def test_stale_advisory_data_is_a_finding(self, advisory_db, stale_advisories):
        advisory_db(stale_advisories)
        assert audit_dependencies()["status"] == "incomplete"
        assert dep1_stored().status == FAIL
        assert dep1_stored().evidence.startswith(
            "The advisory data is from 2024-10-10, older than 7 days: update it and run "
            "`enclave deps audit`.")

    def test_unset_advisory_db_offline_is_a_finding_with_the_plain_sentence(
            self, advisory_db, offline):
        advisory_db(None)
        assert audit_dependencies()["status"] == "incomplete"
        row = DependencyAudit.objects.get()
        assert (row.source, row.data_date, row.stale) == ("pip-audit", None, True)
        assert dep1_stored().evidence.startswith(
            "The online advisory service could not be reached, so no package was audited")

    def test_missing_advisory_directory_is_a_finding_not_a_crash(self, advisory_db, tmp_path):
        advisory_db(tmp_path / "no-such-dir")
        assert audit_dependencies()["status"] == "incomplete"
        row = DependencyAudit.objects.get()
        assert "does not exist" in row.summary["error"]
        assert dep1_stored().evidence.startswith(
            "The last dependency audit could not read its requirements lock or advisory "
            "data: run `enclave deps audit` to see why.")

    def test_failing_run_after_a_clean_one_makes_dep1_fail(self, advisory_db,
                                                           fresh_advisories, tmp_path):
        advisory_db(fresh_advisories)
        audit_dependencies()
        advisory_db(tmp_path / "removed")  # e.g. an attacker deletes the advisory data
        audit_dependencies()
        assert dep1_stored().status == FAIL


class TestConfiguredAudit:
    def test_missing_lock_is_an_incomplete_result(self, fresh_advisories, tmp_path):
        result = configured_audit(fresh_advisories, tmp_path / "missing.txt")
        assert result.status == "incomplete"
        assert result.error == f"requirements lock {tmp_path / 'missing.txt'} does not exist"

    def test_lock_that_is_a_directory_is_an_incomplete_result(self, fresh_advisories,
                                                               tmp_path):
        result = configured_audit(fresh_advisories, tmp_path)
        assert (result.status, result.pinned, len(result.unaudited)) == ("incomplete", 0, 1)


@pytest.mark.django_db
class TestCommandDefault:
    def test_deps_audit_uses_the_configured_advisory_db(self, advisory_db, fresh_advisories,
                                                        tmp_path, capsys):
        advisory_db(fresh_advisories)
        lock = write_lock(tmp_path / "base.txt", "other==1.0")
        assert run_cli("--requirements", str(lock), "--json", "--no-record") == 0
        assert json.loads(capsys.readouterr().out)["source"] == \
            f"osv-dir:{fresh_advisories.resolve()}"

    def test_recording_from_the_command_updates_dep1_at_once(self, advisory_db,
                                                             fresh_advisories, tmp_path):
        advisory_db(fresh_advisories)
        lock = write_lock(tmp_path / "base.txt", "other==1.0")
        assert run_cli("--requirements", str(lock)) == 0
        assert dep1_stored().status == PASS
        with clock.travel(dt.timedelta(days=1)):
            assert run_cli("--requirements", str(lock), "--max-age-days", "0") == 3
        assert dep1_stored().status == FAIL
