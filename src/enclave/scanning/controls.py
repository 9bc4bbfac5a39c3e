"""Security controls contributed by scanning: DEP-1 and why it fails, in plain words."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from enclave.core import clock
from enclave.core.controls import Outcome, Probe, control, failed, passed
from enclave.scanning.audit import DEFAULT_MAX_AGE_DAYS
from enclave.scanning.models import DependencyAudit

MAX_AUDIT_AGE = dt.timedelta(days=7)
FUTURE_SLACK = dt.timedelta(minutes=5)


class Cause(enum.StrEnum):
    """Why DEP-1 fails. Checked in this order; the first that applies is reported."""

    NEVER_AUDITED = "never-audited"
    AUDIT_IN_FUTURE = "audit-in-future"
    AUDIT_OUTDATED = "audit-outdated"
    AUDIT_FAILED = "audit-failed"
    VULNERABLE = "vulnerable"
    SOURCE_UNREACHABLE = "source-unreachable"
    STALE_DATA = "stale-data"
    UNDATED_DATA = "undated-data"
    UNAUDITED = "unaudited"


# One plain sentence per cause, with the command that fixes it. They are shown on the
# public /security page, so they hold only dates, counts and commands: never a server
# path, an advisory source, a package name or an advisory id (an attacker must not learn
# from the page which dependency is vulnerable). `enclave security report` prints the
# same sentence followed by the internal facts.
PUBLIC_REASONS: dict[Cause, str] = {
    Cause.NEVER_AUDITED:
        "No dependency audit has run yet: run `enclave deps audit --advisory-db PATH` "
        "(or set ENCLAVE_ADVISORY_DB).",
    Cause.AUDIT_IN_FUTURE:
        "The last dependency audit is dated {ran_on}, in the future: check the server "
        "clock and run `enclave deps audit`.",
    Cause.AUDIT_OUTDATED:
        "The last dependency audit ran on {ran_on}, {days} days ago (limit {limit}): check "
        "that the background worker is running, or run `enclave deps audit`.",
    Cause.AUDIT_FAILED:
        "The last dependency audit could not read its requirements lock or advisory data: "
        "run `enclave deps audit` to see why.",
    Cause.VULNERABLE:
        "A locked dependency has a known vulnerability: upgrade it to a fixed version "
        "(`enclave deps audit` lists them) and redeploy.",
    Cause.SOURCE_UNREACHABLE:
        "The online advisory service could not be reached, so no package was audited: set "
        "ENCLAVE_ADVISORY_DB to an offline advisory copy (or allow outbound access) and "
        "run `enclave deps audit`.",
    Cause.STALE_DATA:
        "The advisory data is from {data_date}, older than {max_age} days: update it and "
        "run `enclave deps audit`.",
    Cause.UNDATED_DATA:
        "The advisory data has no date, so it cannot be shown to be current: update it and "
        "run `enclave deps audit`.",
    Cause.UNAUDITED:
        "{packages} could not be audited: run `enclave deps audit` to see which and why.",
}


@dataclass(frozen=True)
class Diagnosis:
    """A DEP-1 failure: its cause and the public values its sentence names."""

    cause: Cause
    values: dict[str, object] = field(default_factory=dict)

    def sentence(self) -> str:
        return PUBLIC_REASONS[self.cause].format(**self.values)


def latest_audit() -> DependencyAudit | None:
    return DependencyAudit.objects.order_by("-ran_at", "-id").first()


def _packages(count: int) -> str:
    return f"{count} locked package{'' if count == 1 else 's'}"


def _audit_cause(row: DependencyAudit) -> Diagnosis | None:
    """The cause found in the audit's own result (its age is checked by the caller)."""
    if row.summary.get("error"):
        return Diagnosis(Cause.AUDIT_FAILED)
    if row.status == "vulnerable":
        return Diagnosis(Cause.VULNERABLE)
    if row.source == "pip-audit" and row.data_date is None:
        # pip-audit dates its data only when the service answered for at least one pin.
        return Diagnosis(Cause.SOURCE_UNREACHABLE)
    if row.stale and row.data_date is not None:
        max_age = row.summary.get("max_age_days", DEFAULT_MAX_AGE_DAYS)
        return Diagnosis(Cause.STALE_DATA, {"data_date": row.data_date.isoformat(),
                                            "max_age": max_age})
    if row.stale:
        return Diagnosis(Cause.UNDATED_DATA)
    if row.unaudited_count or row.status != "clean":
        return Diagnosis(Cause.UNAUDITED, {"packages": _packages(row.unaudited_count)})
    return None


def diagnose(row: DependencyAudit | None) -> Diagnosis | None:
    """Why DEP-1 fails for ``row`` (the latest audit), or None when it passes."""
    if row is None:
        return Diagnosis(Cause.NEVER_AUDITED)
    age = clock.now() - row.ran_at
    ran_on = row.ran_at.date().isoformat()
    if age < -FUTURE_SLACK:
        return Diagnosis(Cause.AUDIT_IN_FUTURE, {"ran_on": ran_on})
    if age >= MAX_AUDIT_AGE:
        return Diagnosis(Cause.AUDIT_OUTDATED, {"ran_on": ran_on, "days": age.days,
                                                "limit": MAX_AUDIT_AGE.days})
    return _audit_cause(row)


def public_reason() -> str | None:
    """The one public sentence saying why DEP-1 fails now, or None when it passes."""
    found = diagnose(latest_audit())
    return found.sentence() if found else None


def _facts(row: DependencyAudit) -> str:
    data = row.data_date.isoformat() if row.data_date else "unknown date"
    error = f", error: {row.summary['error']}" if row.summary.get("error") else ""
    return (f"audit of {row.ran_at:%Y-%m-%d %H:%M} UTC via {row.source}: status {row.status}, "
            f"advisory data from {data}{' (stale)' if row.stale else ''}, "
            f"{row.vulnerable_count} vulnerable, {row.unaudited_count} unaudited{error}")


@control("DEP-1", claim="Dependency audit is recent (< 7 days) and clean",
         public="Dependencies are scanned for known vulnerabilities continuously")
def dependency_audit_recent_and_clean(probe: Probe) -> Outcome:
    """Passes only if the latest recorded audit is younger than 7 days and clean.

    A failure's evidence starts with the public sentence for its cause, followed by the
    internal facts (source path, counts). Reads the database: ``probe`` is unused.
    """
    row = latest_audit()
    found = diagnose(row)
    if found is None:
        return passed(_facts(row))
    if row is None:
        return failed(found.sentence())
    return failed(f"{found.sentence()} ({_facts(row)})")
