"""The pip-audit path: its "No known vulnerabilities found" never counts as clean.

No vulnerability service is reachable here, so the real pip-audit is run only against a
closed local port; other outputs come from a stand-in script run as a real subprocess.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from enclave.scanning import audit
from enclave.scanning.pipaudit import audit_with_pip_audit, parse_report
from enclave.testing.live import free_port

# What pip-audit 2.10 prints (--format json) when its PyPI lookup has no data.
SKIPPED_REPORT = json.dumps({"dependencies": [
    {"name": "django", "skip_reason":
        "Dependency not found on PyPI and could not be audited: django (4.2.0)"},
    {"name": "idna", "skip_reason":
        "Dependency not found on PyPI and could not be audited: idna (3.7)"},
], "fixes": []})
VULNERABLE_REPORT = json.dumps({"dependencies": [
    {"name": "Django", "version": "4.2.0", "vulns": [
        {"id": "PYSEC-2023-61", "fix_versions": ["3.2.19", "4.1.9", "4.2.1"],
         "aliases": ["CVE-2023-31047"], "description": "..."}]},
    {"name": "idna", "version": "3.7", "vulns": []},
], "fixes": []})
LOCK = audit.parse_lock_text("django==4.2.0\nidna==3.7\n", "base.txt")


def stub_pip_audit(tmp_path: Path, *, stdout: str = "", stderr: str = "", code: int = 0,
                   sleep: float = 0) -> tuple[str, ...]:
    """A stand-in for ``python -m pip_audit`` that prints fixed output; returns its argv."""
    script = tmp_path / "fake_pip_audit.py"
    script.write_text(
        "import sys, time\n"
        f"time.sleep({sleep!r})\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code!r})\n")
    return (sys.executable, str(script))


class TestParseReport:
    def test_skipped_dependencies_are_unaudited(self):
        vulnerabilities, unaudited = parse_report(json.loads(SKIPPED_REPORT), LOCK)
        assert vulnerabilities == []
        assert [(u.package, u.version) for u in unaudited] == [("django", "4.2.0"),
                                                               ("idna", "3.7")]
        assert "could not be audited" in unaudited[0].reason

    def test_reported_vulnerability_is_a_finding_with_fix_versions(self):
        vulnerabilities, unaudited = parse_report(json.loads(VULNERABLE_REPORT), LOCK)
        assert unaudited == []
        assert vulnerabilities == [audit.Vulnerability(
            "django", "4.2.0", "PYSEC-2023-61", ("CVE-2023-31047",),
            ("3.2.19", "4.1.9", "4.2.1"))]

    def test_pin_missing_from_report_is_unaudited(self):
        report = {"dependencies": [{"name": "idna", "version": "3.7", "vulns": []}]}
        _, unaudited = parse_report(report, LOCK)
        assert unaudited == [audit.Unaudited(
            "django", "4.2.0", "could not be audited: missing from pip-audit's report")]


class TestAuditWithPipAudit:
    def test_all_skipped_report_with_reassuring_banner_is_not_clean(self, tmp_path):
        command = stub_pip_audit(tmp_path, stdout=SKIPPED_REPORT,
                                 stderr="No known vulnerabilities found\n")
        result = audit_with_pip_audit(LOCK, command=command)
        assert result.status == audit.INCOMPLETE
        assert len(result.unaudited) == 2
        assert (result.data_date, result.stale) == (None, True)

    def test_complete_report_without_vulnerabilities_is_clean(self, tmp_path):
        report = {"dependencies": [{"name": "django", "version": "4.2.0", "vulns": []},
                                   {"name": "idna", "version": "3.7", "vulns": []}]}
        result = audit_with_pip_audit(LOCK, command=stub_pip_audit(tmp_path,
                                                                   stdout=json.dumps(report)))
        assert (result.status, result.data_age_days) == (audit.CLEAN, 0)

    def test_vulnerable_report_with_exit_1_is_vulnerable(self, tmp_path):
        command = stub_pip_audit(tmp_path, stdout=VULNERABLE_REPORT, code=1)
        result = audit_with_pip_audit(LOCK, command=command)
        assert result.status == audit.VULNERABLE
        assert result.source == "pip-audit"

    def test_unreachable_service_makes_every_pin_unaudited(self):
        url = f"http://127.0.0.1:{free_port()}/v1/query"
        result = audit_with_pip_audit(LOCK, extra_args=("-s", "osv", "--osv-url", url),
                                      timeout=120)
        assert result.status == audit.INCOMPLETE
        assert {u.package for u in result.unaudited} == {"django", "idna"}
        assert "pip-audit failed (exit 1)" in result.unaudited[0].reason

    def test_timeout_makes_every_pin_unaudited(self, tmp_path):
        command = stub_pip_audit(tmp_path, stdout=SKIPPED_REPORT, sleep=30)
        result = audit_with_pip_audit(LOCK, command=command, timeout=0.5)
        assert [u.reason for u in result.unaudited] == [
            "could not be audited: pip-audit timed out after 0.5s"] * 2

    def test_failure_reason_drops_url_credentials(self, tmp_path):
        command = stub_pip_audit(
            tmp_path, code=2,
            stderr="error: https://ci:s3cr3t-token@pypi.internal/simple unreachable\n")
        result = audit_with_pip_audit(LOCK, command=command)
        assert "s3cr3t-token" not in json.dumps(result.summary())
        assert "https://***@pypi.internal/simple" in result.unaudited[0].reason
