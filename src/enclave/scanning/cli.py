"""``enclave deps audit``: audit the locked dependencies for known vulnerabilities.

With ``--advisory-db PATH`` (default: ``ENCLAVE_ADVISORY_DB``) the lock is checked
offline against an OSV advisory directory; without either, through pip-audit's online
service. The result is recorded for
control DEP-1 unless ``--no-record`` is given.

Exit codes:

* 0 — clean: every pin audited, no known vulnerability, advisory data fresh.
* 1 — at least one pinned version is affected by a known vulnerability.
* 2 — bad input: the lock or the advisory directory is missing or unreadable, or the
  lock names no requirement at all (one line on stderr, nothing recorded); also when the
  result could not be recorded (database not migrated): the report is printed, then one
  line on stderr.
* 3 — no vulnerability found, but the audit is incomplete: stale (or undated) advisory
  data, or packages that could not be audited. This is a finding, not a pass.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from enclave.scanning.audit import (
    CLEAN,
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_REQUIREMENTS,
    VULNERABLE,
    AuditResult,
    audit_with_advisories,
    parse_lock,
)
from enclave.scanning.errors import AuditInputError

EXIT_CLEAN, EXIT_VULNERABLE, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3


def _max_age(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``enclave deps audit`` to ``parser``."""
    parser.add_argument("--advisory-db", type=Path, metavar="PATH",
                        help="offline OSV advisory directory (default: ENCLAVE_ADVISORY_DB, "
                        "else ask pip-audit's online service)")
    parser.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS,
                        metavar="PATH", help="hash-pinned lock (default: requirements/base.txt)")
    parser.add_argument("--max-age-days", type=_max_age, default=DEFAULT_MAX_AGE_DAYS,
                        metavar="N", help="advisory data older than N days is a finding "
                        f"(default: {DEFAULT_MAX_AGE_DAYS})")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-record", dest="record", action="store_false",
                        help="do not store the result for control DEP-1")


def exit_code(result: AuditResult) -> int:
    """The documented exit code of ``result`` (see the module docstring)."""
    if result.status == VULNERABLE:
        return EXIT_VULNERABLE
    return EXIT_CLEAN if result.status == CLEAN else EXIT_INCOMPLETE


def run_audit(args: argparse.Namespace) -> AuditResult:
    """Audit per ``args``. Raises :class:`AuditInputError` for unusable input."""
    from django.conf import settings

    lock = parse_lock(Path(args.requirements))
    advisory_db = args.advisory_db or settings.CONFIG.advisory_db
    if advisory_db is not None:
        return audit_with_advisories(lock, Path(advisory_db), max_age_days=args.max_age_days)
    from enclave.scanning.pipaudit import audit_with_pip_audit

    return audit_with_pip_audit(lock, max_age_days=args.max_age_days)


def freshness_line(result: AuditResult) -> str:
    """One sentence about the advisory data's age; stale data is called a finding."""
    if result.data_date is None:
        return "advisory data date is unknown — stale: this is a finding, not a pass"
    age = f"advisory data from {result.data_date} is {result.data_age_days} days old"
    if result.stale:
        return f"{age} — stale: this is a finding, not a pass"
    return f"{age} (limit {result.max_age_days})"


def report_lines(result: AuditResult) -> list[str]:
    """The human-readable report, one finding per line."""
    lines = [f"dependency audit of {result.requirements} against {result.source}",
             freshness_line(result),
             f"{result.pinned} pinned packages checked"
             + (f" against {result.advisories} advisories" if result.advisories else "")]
    for v in result.vulnerabilities:
        ids = ", ".join((v.advisory_id, *v.aliases))
        fixed = ", ".join(v.fixed_versions) or "no fixed version known"
        lines.append(f"VULNERABLE  {v.package}=={v.version}  {ids}  fixed in: {fixed}")
    for u in result.unaudited:
        pinned = f"=={u.version}" if u.version else ""
        lines.append(f"UNAUDITED   {u.package}{pinned}  {u.reason}")
    if result.warnings:
        lines.append(f"{len(result.warnings)} advisory warnings (invalid versions or unreadable "
                     f"files skipped), e.g. {result.warnings[0]}")
    lines.append(f"result: {result.status} — {len(result.vulnerabilities)} vulnerable, "
                 f"{len(result.unaudited)} unaudited, data {'stale' if result.stale else 'fresh'}")
    return lines


def record(result: AuditResult) -> tuple[int | None, str | None]:
    """Store ``result`` for DEP-1. Returns ``(row id, None)`` or ``(None, one-line error)``."""
    from django.db import DatabaseError

    from enclave.scanning.actions import do_record_dependency_audit

    try:
        return do_record_dependency_audit(result).pk, None
    except DatabaseError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, (f"the result could not be recorded ({first}); run `enclave manage "
                      "migrate` first or pass --no-record")


def deps_audit(args: argparse.Namespace) -> int:
    """Run the audit, record it (unless ``--no-record``), print it, return the exit code.

    The report is printed even when recording fails; the exit code is then 2, because
    control DEP-1 will not see this run.
    """
    try:
        result = run_audit(args)
    except AuditInputError as exc:
        print(f"enclave: deps audit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    recorded, error = record(result) if args.record else (None, None)
    if args.json:
        print(json.dumps({**result.summary(), "exit_code": exit_code(result),
                          "recorded_id": recorded}, indent=2))
    else:
        print("\n".join(report_lines(result)))
        if recorded:
            print(f"recorded as dependency audit #{recorded} (control DEP-1)")
    if error:
        print(f"enclave: deps audit: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return exit_code(result)
