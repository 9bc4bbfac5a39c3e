"""Why DEP-1 fails, in one plain sentence per cause, on /security and in the report."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable

import pytest
from django.utils.html import strip_tags

from enclave.cli import cmd_security_report
from enclave.core import clock
from enclave.core.actions import do_record_control_results
from enclave.core.controls import registry, run_all
from enclave.scanning import audit
from enclave.scanning.actions import do_record_dependency_audit
from enclave.scanning.controls import PUBLIC_REASONS, Cause
from tests.website.pages import table_rows

SECRET_PATH = "/srv/secret-advisory-mirror-7c1e"
SECRET_PACKAGE = "secret-internal-pkg"
SECRET_ADVISORY = "PYSEC-SECRET-0042"


def record(*, source: str = f"osv-dir:{SECRET_PATH}", ran_at: dt.datetime | None = None,
           data_date: dt.date | str | None = "today", stale: bool = False, pinned: int = 3,
           vulnerabilities: tuple = (), unaudited: tuple = ()) -> None:
    if data_date == "today":
        data_date = clock.now().date()
    do_record_dependency_audit(audit.AuditResult(
        source=source, requirements="requirements/base.txt", ran_at=ran_at or clock.now(),
        data_date=data_date, data_age_days=0, max_age_days=7, stale=stale, pinned=pinned,
        vulnerabilities=vulnerabilities, unaudited=unaudited))


def unaudited(n: int) -> tuple:
    return tuple(audit.Unaudited(f"{SECRET_PACKAGE}-{i}", "1.0",
                                 f"could not be audited: {SECRET_PATH}") for i in range(n))


def today(days: int = 0) -> str:
    return (clock.now() + dt.timedelta(days=days)).date().isoformat()


# For each cause: how to bring it about, and the sentence a reader must then see. The
# sentences are written out here, not taken from the table, so a wording change that
# loses a date, a count or the command fails a test.
SCENARIOS: dict[Cause, tuple[Callable[[], None], Callable[[], str]]] = {
    Cause.NEVER_AUDITED: (
        lambda: None,
        lambda: "No dependency audit has run yet: run `enclave deps audit --advisory-db PATH` "
                "(or set ENCLAVE_ADVISORY_DB)."),
    Cause.AUDIT_IN_FUTURE: (
        lambda: record(ran_at=clock.now() + dt.timedelta(days=2)),
        lambda: f"The last dependency audit is dated {today(2)}, in the future: check the "
                "server clock and run `enclave deps audit`."),
    Cause.AUDIT_OUTDATED: (
        lambda: record(ran_at=clock.now() - dt.timedelta(days=9)),
        lambda: f"The last dependency audit ran on {today(-9)}, 9 days ago (limit 7): check "
                "that the background worker is running, or run `enclave deps audit`."),
    Cause.AUDIT_FAILED: (
        lambda: do_record_dependency_audit(audit.failed_audit(
            f"osv-dir:{SECRET_PATH}", "requirements/base.txt",
            f"advisory directory {SECRET_PATH} does not exist or is not a directory")),
        lambda: "The last dependency audit could not read its requirements lock or advisory "
                "data: run `enclave deps audit` to see why."),
    Cause.VULNERABLE: (
        lambda: record(vulnerabilities=(audit.Vulnerability(
            SECRET_PACKAGE, "1.0", SECRET_ADVISORY, ("CVE-2099-0001",), ("1.1",)),)),
        lambda: "A locked dependency has a known vulnerability: upgrade it to a fixed version "
                "(`enclave deps audit` lists them) and redeploy."),
    Cause.SOURCE_UNREACHABLE: (
        lambda: record(source="pip-audit", data_date=None, stale=True, pinned=2,
                       unaudited=unaudited(2)),
        lambda: "The online advisory service could not be reached, so no package was "
                "audited: set ENCLAVE_ADVISORY_DB to an offline advisory copy (or allow "
                "outbound access) and run `enclave deps audit`."),
    Cause.STALE_DATA: (
        lambda: record(data_date=dt.date(2024, 10, 10), stale=True),
        lambda: "The advisory data is from 2024-10-10, older than 7 days: update it and run "
                "`enclave deps audit`."),
    Cause.UNDATED_DATA: (
        lambda: record(stale=True, data_date=None),
        lambda: "The advisory data has no date, so it cannot be shown to be current: update "
                "it and run `enclave deps audit`."),
    Cause.UNAUDITED: (
        lambda: record(unaudited=unaudited(2)),
        lambda: "2 locked packages could not be audited: run `enclave deps audit` to see "
                "which and why."),
}


def bring_about(cause: Cause) -> str:
    """Create the cause's state, store DEP-1's result as the worker would; the sentence."""
    arrange, sentence = SCENARIOS[cause]
    arrange()
    do_record_control_results(run_all(only={"DEP-1"}))
    return sentence()


def report(capsys) -> str:
    args = argparse.Namespace(url="https://127.0.0.1:1", http_url="http://127.0.0.1:1",
                              record=False, json=False)
    assert cmd_security_report(args) == 1
    return capsys.readouterr().out


def dep1_cell(client) -> list[str]:
    return table_rows(client.get("/security").text)["DEP-1"]


class TestReasonTable:
    def test_every_cause_has_one_sentence_and_one_scenario(self):
        assert set(PUBLIC_REASONS) == set(SCENARIOS) == set(Cause)

    def test_every_sentence_names_a_command(self):
        for sentence in PUBLIC_REASONS.values():
            assert "`enclave deps audit" in sentence


@pytest.mark.django_db
class TestSecurityPage:
    @pytest.mark.parametrize("cause", list(Cause))
    def test_page_says_why_dep1_fails(self, client, cause):
        sentence = bring_about(cause)
        public = registry()["DEP-1"].public
        plain = sentence.replace("`", "")
        assert dep1_cell(client)[1:3] == [f"{public} {plain}", "Failing"]

    def test_commands_in_the_sentence_are_shown_as_code(self, client):
        bring_about(Cause.STALE_DATA)
        assert "run <code>enclave deps audit</code>." in client.get("/security").text

    def test_page_shows_no_reason_when_dep1_passes(self, client):
        record()
        do_record_control_results(run_all(only={"DEP-1"}))
        assert dep1_cell(client)[1:3] == [registry()["DEP-1"].public, "Passing"]

    def test_page_shows_no_reason_before_dep1_was_checked(self, client):
        assert dep1_cell(client)[1:3] == [registry()["DEP-1"].public, "Not checked yet"]

    @pytest.mark.parametrize("cause", [Cause.VULNERABLE, Cause.AUDIT_FAILED, Cause.UNAUDITED,
                                       Cause.STALE_DATA])
    def test_page_never_names_paths_packages_or_advisories(self, client, cause):
        bring_about(cause)
        text = strip_tags(client.get("/security").text)
        for secret in (SECRET_PATH, SECRET_PACKAGE, SECRET_ADVISORY, "osv-dir"):
            assert secret not in text


@pytest.mark.django_db
class TestSecurityReport:
    @pytest.mark.parametrize("cause", list(Cause))
    def test_report_prints_the_sentence_as_dep1_evidence(self, capsys, cause):
        sentence = bring_about(cause)
        lines = report(capsys).splitlines()
        dep1 = lines.index(next(line for line in lines if line.split()[1:2] == ["DEP-1"]))
        assert lines[dep1].split()[0] == "FAIL"
        assert lines[dep1 + 1].split("evidence: ", 1)[1].startswith(sentence)

    def test_report_keeps_the_internal_facts_after_the_sentence(self, capsys):
        bring_about(Cause.VULNERABLE)
        assert f"via osv-dir:{SECRET_PATH}: status vulnerable" in report(capsys)
