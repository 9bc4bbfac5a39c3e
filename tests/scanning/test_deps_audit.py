"""`enclave deps audit` against OSV advisory directories: lock parsing, range semantics,
data freshness and the command's output and exit codes (no database: ``--no-record``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import enclave.config
from enclave.cli import build_parser
from enclave.core import clock
from enclave.scanning import audit
from enclave.scanning.cli import deps_audit
from enclave.scanning.errors import AuditInputError

SHARED_ADVISORY_DB = Path(enclave.config.PROJECT_ROOT).parent / "shared" / "advisory-db"
HASH = "--hash=sha256:" + "0" * 64


def write_advisory(root: Path, advisory_id: str, package: str = "demo", *,
                   events: list[dict] | None = None, versions: list[str] | None = None,
                   ecosystem: str = "PyPI", fmt: str = "yaml", **extra) -> Path:
    """Write one OSV advisory under ``root/vulns/<package>/`` and return its path."""
    affected = {"package": {"name": package, "ecosystem": ecosystem}}
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        affected["versions"] = versions
    doc = {"id": advisory_id, "aliases": [f"CVE-{advisory_id}"], "affected": [affected],
           "modified": "2024-01-01T00:00:00Z", **extra}
    path = root / "vulns" / package / f"{advisory_id}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc))
    return path


def date_source(root: Path, date: dt.date | None = None) -> Path:
    """Write a SOURCE.md dating the data (today by the clock unless given)."""
    root.mkdir(parents=True, exist_ok=True)
    when = date or clock.now().date()
    (root / "SOURCE.md").write_text(f"# Test advisories\n\nSnapshot of {when.isoformat()}.\n")
    return root


def write_lock(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def audit_pin(root: Path, version: str, package: str = "demo") -> audit.AuditResult:
    lock = audit.parse_lock_text(f"{package}=={version}\n")
    return audit.audit_with_advisories(lock, root)


def flagged(root: Path, version: str, package: str = "demo") -> set[str]:
    return {v.advisory_id for v in audit_pin(root, version, package).vulnerabilities}


def run_cli(*argv: str) -> int:
    return deps_audit(build_parser().parse_args(["deps", "audit", *argv]))


@pytest.fixture
def advisories(tmp_path: Path) -> Path:
    return date_source(tmp_path / "advisories")


class TestParseLock:
    def test_hash_pinned_requirement_is_parsed_with_pep503_name(self):
        lock = audit.parse_lock_text(f"Django_Extra.Thing[x]==1.2.3 \\\n    {HASH}\n")
        assert lock.pins == (audit.Pin("django-extra-thing", "1.2.3", 1),)

    def test_comments_options_and_hashes_are_ignored(self):
        lock = audit.parse_lock_text(
            f"# header\n--index-url https://pypi.org/simple\nidna==3.7 \\\n    {HASH} \\\n"
            f"    {HASH}\n    # via requests\nsix==1.16.0  # trailing comment\n")
        assert [(p.name, p.version) for p in lock.pins] == [("idna", "3.7"), ("six", "1.16.0")]
        assert lock.unaudited == ()

    @pytest.mark.parametrize("line", ["requests>=2.0", "requests", "requests==2.*",
                                      "requests==2.0,<3", "requests @ https://x/r.whl"])
    def test_unpinned_requirement_is_unaudited_not_pinned(self, line):
        lock = audit.parse_lock_text(line + "\n")
        assert lock.pins == ()
        assert lock.unaudited == (audit.Unaudited("requests", "", audit.NOT_PINNED),)

    def test_include_option_is_unaudited_not_skipped(self):
        lock = audit.parse_lock_text("-r other.txt\n")
        assert "-r is not followed" in lock.unaudited[0].reason

    def test_missing_lock_raises_one_line_input_error(self, tmp_path):
        with pytest.raises(AuditInputError, match="does not exist") as info:
            audit.parse_lock(tmp_path / "nope.txt")
        assert "\n" not in str(info.value)

    def test_lock_without_requirements_raises_input_error(self, tmp_path):
        with pytest.raises(AuditInputError, match="names no requirement"):
            audit.parse_lock(write_lock(tmp_path / "base.txt", "# nothing here"))


class TestRangeSemantics:
    @pytest.mark.parametrize(("version", "affected"), [("0.0.1", True), ("1.9.9", True),
                                                      ("2.0", False), ("3.0", False)])
    def test_introduced_zero_affects_from_start_until_fixed(self, advisories, version, affected):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}, {"fixed": "2.0"}])
        assert bool(flagged(advisories, version)) is affected

    @pytest.mark.parametrize(("version", "affected"), [("0.9", False), ("1.0", True),
                                                      ("1.4", True), ("1.4.1", False)])
    def test_last_affected_is_inclusive(self, advisories, version, affected):
        write_advisory(advisories, "PYSEC-2",
                       events=[{"introduced": "1.0"}, {"last_affected": "1.4"}])
        assert bool(flagged(advisories, version)) is affected

    @pytest.mark.parametrize(("version", "affected"), [("1.2", True), ("1.7", False),
                                                      ("2.1", True), ("2.3", False)])
    def test_multiple_intervals_in_any_order_each_apply(self, advisories, version, affected):
        write_advisory(advisories, "PYSEC-3", events=[
            {"introduced": "2.0"}, {"fixed": "2.3"}, {"introduced": "1.0"}, {"fixed": "1.5"}])
        assert bool(flagged(advisories, version)) is affected

    def test_explicit_version_list_is_affected_without_range(self, advisories):
        write_advisory(advisories, "PYSEC-4", versions=["1.0", "1.1"])
        assert flagged(advisories, "1.1.0") == {"PYSEC-4"}
        assert flagged(advisories, "1.2") == set()

    def test_withdrawn_advisory_is_ignored(self, advisories):
        write_advisory(advisories, "PYSEC-5", events=[{"introduced": "0"}],
                       withdrawn="2024-02-01T00:00:00Z")
        assert flagged(advisories, "1.0") == set()

    def test_other_ecosystem_is_ignored(self, advisories):
        write_advisory(advisories, "GHSA-npm", events=[{"introduced": "0"}], ecosystem="npm")
        assert flagged(advisories, "1.0") == set()

    def test_json_advisory_is_matched(self, advisories):
        write_advisory(advisories, "PYSEC-6", events=[{"introduced": "0"}], fmt="json")
        assert flagged(advisories, "1.0") == {"PYSEC-6"}

    def test_package_name_matches_after_normalisation(self, advisories):
        write_advisory(advisories, "PYSEC-7", "Demo_Pkg", events=[{"introduced": "0"}])
        assert flagged(advisories, "1.0", "demo.pkg") == {"PYSEC-7"}

    def test_invalid_advisory_version_is_skipped_with_counted_warning(self, advisories):
        write_advisory(advisories, "PYSEC-8", versions=["trunk", "1.0", "2.0-final-x"])
        result = audit_pin(advisories, "1.0")
        assert [v.advisory_id for v in result.vulnerabilities] == ["PYSEC-8"]
        assert len(result.warnings) == 2

    def test_invalid_range_bound_makes_package_unaudited_not_clean(self, advisories):
        write_advisory(advisories, "PYSEC-9", events=[{"introduced": "not-a-version"}])
        result = audit_pin(advisories, "1.0")
        assert result.status == audit.INCOMPLETE
        assert "PYSEC-9" in result.unaudited[0].reason

    def test_unreadable_advisory_makes_its_package_unaudited(self, advisories):
        write_advisory(advisories, "PYSEC-10", events=[{"introduced": "0"}])
        (advisories / "vulns" / "demo" / "PYSEC-11.yaml").write_text("id: [unclosed\n")
        result = audit_pin(advisories, "1.0")
        assert result.unaudited[0].reason == "could not be audited: an advisory file is unreadable"

    def test_fixed_versions_are_newer_unaffected_fixes(self, advisories):
        write_advisory(advisories, "PYSEC-12", events=[
            {"introduced": "0"}, {"fixed": "1.2.5"}, {"introduced": "2.0"}, {"fixed": "2.0.3"}])
        (finding,) = audit_pin(advisories, "1.2.0").vulnerabilities
        assert finding.fixed_versions == ("1.2.5", "2.0.3")
        assert finding.aliases == ("CVE-PYSEC-12",)


class TestRealAdvisoryDb:
    @pytest.fixture(autouse=True)
    def _need_snapshot(self):
        if not (SHARED_ADVISORY_DB / "vulns").is_dir():
            pytest.skip(f"offline advisory snapshot not found at {SHARED_ADVISORY_DB}")

    def test_django_4_2_0_is_flagged_with_pysec_id_and_fixed_version(self):
        result = audit_pin(SHARED_ADVISORY_DB, "4.2.0", "django")
        by_id = {v.advisory_id: v for v in result.vulnerabilities}
        assert by_id["PYSEC-2023-61"].fixed_versions == ("4.2.1",)
        assert "CVE-2023-31047" in by_id["PYSEC-2023-61"].aliases
        assert result.status == audit.VULNERABLE

    def test_django_4_2_16_is_not_flagged(self):
        assert audit_pin(SHARED_ADVISORY_DB, "4.2.16", "django").vulnerabilities == ()

    def test_snapshot_date_comes_from_source_md(self):
        assert audit_pin(SHARED_ADVISORY_DB, "4.2.16", "django").data_date == dt.date(2024, 10, 10)


class TestFreshness:
    def test_data_date_falls_back_to_newest_modified(self, tmp_path):
        write_advisory(tmp_path, "PYSEC-1", events=[{"introduced": "0"}],
                       modified="2024-03-05T10:00:00Z")
        write_advisory(tmp_path, "PYSEC-2", events=[{"introduced": "0"}],
                       modified="2023-01-01T00:00:00Z")
        assert audit_pin(tmp_path, "1.0", "other").data_date == dt.date(2024, 3, 5)

    def test_data_older_than_max_age_is_stale_and_not_clean(self, tmp_path):
        date_source(tmp_path, clock.now().date() - dt.timedelta(days=8))
        write_advisory(tmp_path, "PYSEC-1", events=[{"introduced": "0"}])
        result = audit_pin(tmp_path, "1.0", "other")
        assert (result.stale, result.data_age_days, result.status) == (True, 8, audit.INCOMPLETE)

    def test_data_within_max_age_is_fresh_and_clean(self, advisories):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}])
        result = audit_pin(advisories, "1.0", "other")
        assert (result.stale, result.data_age_days, result.status) == (False, 0, audit.CLEAN)

    def test_undated_data_is_stale(self, tmp_path):
        write_advisory(tmp_path, "PYSEC-1", events=[{"introduced": "0"}], modified="garbage")
        assert audit_pin(tmp_path, "1.0", "other").stale is True

    def test_fresh_but_empty_advisory_dir_leaves_pin_unaudited(self, advisories):
        result = audit_pin(advisories, "1.0")
        assert (result.stale, result.status) == (False, audit.INCOMPLETE)
        assert result.unaudited[0].reason == "could not be audited: no advisory in the directory"


class TestDepsAuditCommand:
    def test_stale_data_exits_3_and_says_stale_without_vulnerabilities(self, tmp_path, capsys):
        date_source(tmp_path / "adv", dt.date(2024, 10, 10))
        write_advisory(tmp_path / "adv", "PYSEC-1", events=[{"introduced": "0"}])
        lock = write_lock(tmp_path / "base.txt", "other==1.0")
        code = run_cli("--advisory-db", str(tmp_path / "adv"), "--requirements", str(lock),
                       "--no-record")
        out = capsys.readouterr().out
        assert code == 3
        assert "advisory data from 2024-10-10 is" in out
        assert "stale: this is a finding, not a pass" in out

    def test_vulnerable_pin_exits_1_and_lists_advisory_and_fix(self, advisories, tmp_path,
                                                                 capsys):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}, {"fixed": "1.1"}])
        lock = write_lock(tmp_path / "base.txt", f"demo==1.0 \\\n    {HASH}")
        code = run_cli("--advisory-db", str(advisories), "--requirements", str(lock),
                       "--no-record")
        out = capsys.readouterr().out
        assert code == 1
        assert "VULNERABLE  demo==1.0  PYSEC-1, CVE-PYSEC-1  fixed in: 1.1" in out

    def test_unpinned_line_exits_3_as_unaudited(self, advisories, tmp_path, capsys):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}])
        lock = write_lock(tmp_path / "base.txt", "other==1.0", "loose>=2")
        code = run_cli("--advisory-db", str(advisories), "--requirements", str(lock),
                       "--no-record")
        assert code == 3
        assert "UNAUDITED   loose  could not be audited: not pinned" in capsys.readouterr().out

    def test_missing_lock_exits_2_with_one_line_message(self, advisories, tmp_path, capsys):
        code = run_cli("--advisory-db", str(advisories), "--requirements",
                       str(tmp_path / "missing.txt"), "--no-record")
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1
        assert "missing.txt does not exist" in err

    def test_missing_advisory_dir_exits_2_with_one_line_message(self, tmp_path, capsys):
        lock = write_lock(tmp_path / "base.txt", "other==1.0")
        code = run_cli("--advisory-db", str(tmp_path / "nowhere"), "--requirements", str(lock),
                       "--no-record")
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1
        assert "nowhere does not exist" in err

    def test_json_output_carries_status_and_exit_code(self, advisories, tmp_path, capsys):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}])
        lock = write_lock(tmp_path / "base.txt", "demo==1.0")
        run_cli("--advisory-db", str(advisories), "--requirements", str(lock), "--json",
                "--no-record")
        report = json.loads(capsys.readouterr().out)
        assert (report["status"], report["exit_code"]) == ("vulnerable", 1)
        assert report["vulnerabilities"][0]["id"] == "PYSEC-1"

    def test_installed_command_exits_1_for_vulnerable_pin(self, advisories, tmp_path):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}])
        lock = write_lock(tmp_path / "base.txt", "demo==1.0")
        proc = subprocess.run(
            [sys.executable, "-m", "enclave", "deps", "audit", "--advisory-db", str(advisories),
             "--requirements", str(lock), "--no-record"],
            capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False)
        assert proc.returncode == 1, proc.stderr
        assert "VULNERABLE  demo==1.0  PYSEC-1" in proc.stdout

    def test_unrecordable_result_exits_2_after_printing_report(self, advisories, tmp_path):
        write_advisory(advisories, "PYSEC-1", events=[{"introduced": "0"}])
        lock = write_lock(tmp_path / "base.txt", "other==1.0")
        env = {**os.environ, "ENCLAVE_VAR_DIR": str(tmp_path / "unmigrated")}
        env.pop("ENCLAVE_DATABASE_URL", None)
        proc = subprocess.run(
            [sys.executable, "-m", "enclave", "deps", "audit", "--advisory-db", str(advisories),
             "--requirements", str(lock)],
            capture_output=True, text=True, env=env, timeout=120, check=False)
        assert proc.returncode == 2
        assert "result: clean" in proc.stdout
        assert proc.stderr.count("\n") == 1
        assert "could not be recorded" in proc.stderr
