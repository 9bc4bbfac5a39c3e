"""Recording a dependency audit and control DEP-1 built on the latest record."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError

from enclave.core import clock
from enclave.core.controls import FAIL, PASS, Outcome, Probe, registry
from enclave.core.models import AuditEvent, AuditEventType
from enclave.scanning import audit
from enclave.scanning.actions import do_record_dependency_audit
from enclave.scanning.models import DependencyAudit
from tests.scanning.test_deps_audit import date_source, run_cli, write_advisory, write_lock

PROBE = Probe("https://x", None, "x", None)


def dep1() -> Outcome:
    return registry()["DEP-1"].check(PROBE)


@pytest.fixture
def fresh_clean_args(tmp_path) -> list[str]:
    """CLI arguments for a tiny advisory dir dated today that matches nothing in the lock."""
    advisories = date_source(tmp_path / "advisories")
    write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}, {"fixed": "1.1"}])
    lock = write_lock(tmp_path / "base.txt", "other==1.0")
    return ["--advisory-db", str(advisories), "--requirements", str(lock)]


@pytest.mark.django_db
class TestRecordDependencyAudit:
    def test_record_writes_row_and_audit_event(self, fresh_clean_args):
        assert run_cli(*fresh_clean_args) == 0
        row = DependencyAudit.objects.get()
        event = AuditEvent.objects.get(event_type=AuditEventType.DEPENDENCY_AUDIT_RECORDED)
        assert (row.status, row.vulnerable_count, row.unaudited_count) == ("clean", 0, 0)
        assert event.target_id == str(row.pk)
        assert event.extra_data["status"] == "clean"

    def test_no_record_option_stores_nothing(self, fresh_clean_args):
        run_cli(*fresh_clean_args, "--no-record")
        assert DependencyAudit.objects.count() == 0

    def test_clean_row_with_findings_is_refused_by_database(self):
        with pytest.raises(IntegrityError):
            DependencyAudit.objects.create(source="x", status="clean", vulnerable_count=0,
                                           unaudited_count=2, stale=False)


@pytest.mark.django_db
class TestDependencyAuditControl:
    def test_control_fails_when_no_audit_recorded(self):
        outcome = dep1()
        assert outcome.status == FAIL
        assert outcome.evidence.startswith("No dependency audit has run yet")

    def test_control_passes_after_fresh_clean_audit_exits_0(self, fresh_clean_args):
        assert run_cli(*fresh_clean_args) == 0
        outcome = dep1()
        assert outcome.status == PASS
        assert f"advisory data from {clock.now().date().isoformat()}" in outcome.evidence
        assert "0 vulnerable, 0 unaudited" in outcome.evidence

    def test_control_fails_once_audit_is_older_than_seven_days(self, fresh_clean_args):
        run_cli(*fresh_clean_args)
        with clock.travel(dt.timedelta(days=8)):
            outcome = dep1()
        assert outcome.status == FAIL
        assert ", 8 days ago (limit 7)" in outcome.evidence

    def test_control_fails_when_latest_audit_used_stale_data(self, tmp_path):
        advisories = date_source(tmp_path / "adv", dt.date(2024, 10, 10))
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}])
        lock = write_lock(tmp_path / "base.txt", "other==1.0")
        assert run_cli("--advisory-db", str(advisories), "--requirements", str(lock)) == 3
        outcome = dep1()
        assert outcome.status == FAIL
        assert "status incomplete, advisory data from 2024-10-10 (stale)" in outcome.evidence

    def test_control_fails_when_latest_audit_found_vulnerabilities(self, fresh_clean_args,
                                                                   tmp_path):
        run_cli(*fresh_clean_args)
        lock = write_lock(tmp_path / "vulnerable.txt", "demo==1.0")
        run_cli("--advisory-db", str(tmp_path / "advisories"), "--requirements", str(lock))
        outcome = dep1()
        assert outcome.status == FAIL
        assert "status vulnerable" in outcome.evidence
        assert "1 vulnerable, 0 unaudited" in outcome.evidence

    def test_control_fails_when_latest_audit_has_unaudited_packages(self):
        result = audit.AuditResult(
            source="pip-audit", requirements="base.txt", ran_at=clock.now(),
            data_date=None, data_age_days=None, max_age_days=7, stale=True, pinned=1,
            unaudited=(audit.Unaudited("idna", "3.7", "could not be audited: x"),))
        do_record_dependency_audit(result)
        outcome = dep1()
        assert outcome.status == FAIL
        assert "advisory data from unknown date (stale), 0 vulnerable, 1 unaudited" \
            in outcome.evidence
