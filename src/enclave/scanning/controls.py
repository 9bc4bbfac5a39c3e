"""Security controls contributed by scanning."""

from __future__ import annotations

import datetime as dt

from enclave.core import clock
from enclave.core.controls import Outcome, Probe, control, failed, passed
from enclave.scanning.models import DependencyAudit

MAX_AUDIT_AGE = dt.timedelta(days=7)


def _facts(row: DependencyAudit) -> str:
    data = row.data_date.isoformat() if row.data_date else "unknown date"
    return (f"audit of {row.ran_at:%Y-%m-%d %H:%M} UTC via {row.source}: status {row.status}, "
            f"advisory data from {data}{' (stale)' if row.stale else ''}, "
            f"{row.vulnerable_count} vulnerable, {row.unaudited_count} unaudited")


@control("DEP-1", claim="Dependency audit is recent (< 7 days) and clean",
         public="Dependencies are scanned for known vulnerabilities continuously")
def dependency_audit_recent_and_clean(probe: Probe) -> Outcome:
    """Passes only if the latest recorded audit is younger than 7 days and clean.

    Reads the database, not the deployment: ``probe`` is unused.
    """
    row = DependencyAudit.objects.order_by("-ran_at", "-id").first()
    if row is None:
        return failed("no dependency audit has been recorded; run `enclave deps audit`")
    age = clock.now() - row.ran_at
    if age >= MAX_AUDIT_AGE:
        return failed(f"latest audit is {age.days} days old (limit 7): {_facts(row)}")
    if age < -dt.timedelta(minutes=5):
        return failed(f"latest audit is dated in the future: {_facts(row)}")
    if row.status != "clean":
        return failed(f"latest audit is not clean: {_facts(row)}")
    return passed(_facts(row))
