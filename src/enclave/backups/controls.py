"""Security controls contributed by backups (BAK-1..BAK-3)."""

from __future__ import annotations

import datetime as dt

from enclave.backups import retention
from enclave.backups.errors import BackupError
from enclave.core import clock
from enclave.core.controls import Outcome, Probe, control, failed, passed

MAX_BACKUP_AGE = dt.timedelta(hours=25)
MAX_DRILL_AGE = dt.timedelta(days=8)


@control(
    "BAK-1",
    claim="The latest successful backup is younger than 25 hours",
    public="The database is backed up, encrypted, every day",
)
def check_latest_backup(probe: Probe) -> Outcome:
    from enclave.backups.models import Backup

    latest = Backup.objects.filter(expunged_at__isnull=True).order_by("-created_at").first()
    if latest is None:
        return failed("no backup has been made")
    age = clock.now() - latest.created_at
    if age > MAX_BACKUP_AGE:
        return failed(f"latest backup {latest.backup_id} is {age} old")
    return passed(f"latest backup {latest.backup_id} is {age} old")


def retention_problems(ids: list[str], now: dt.datetime) -> list[str]:
    """What is wrong with the set of backups on the target at ``now`` (empty when fine):
    a backup older than 90 days present, or a day missing from the daily series of the
    last 30 days (since the first backup)."""
    dates = sorted(d for d in (retention.created_from_id(i) for i in ids) if d)
    problems = [f"{d:%Y-%m-%d} older than {retention.EXPUNGE_AFTER_DAYS} days still present"
                for d in dates if now - d > dt.timedelta(days=retention.EXPUNGE_AFTER_DAYS)]
    if dates:
        have = {d.date() for d in dates}
        first = max(dates[0].date(),
                    (now - dt.timedelta(days=retention.KEEP_ALL_DAYS - 1)).date())
        day = first
        while day < now.date():
            if day not in have:
                problems.append(f"no backup for {day:%Y-%m-%d}")
            day += dt.timedelta(days=1)
    return problems


@control(
    "BAK-2",
    claim="Every day of the last 30 has a backup and nothing older than 90 days remains",
    public="Backups are kept for at least 30 days and fully expunged after 90 days",
)
def check_retention(probe: Probe) -> Outcome:
    from enclave.backups import services

    try:
        ids = services.get_target().list_ids()
    except BackupError as exc:
        return failed(f"backup target unreadable: {exc}")
    if not ids:
        return failed("no backup on the target")
    problems = retention_problems(ids, clock.now())
    if problems:
        return failed("; ".join(problems[:5]))
    return passed(f"{len(ids)} backups on the target match the 30/90-day policy")


@control(
    "BAK-3",
    claim="A restore drill succeeded within the last 8 days",
    public="Backups are proven by restoring them on a schedule",
)
def check_restore_drill(probe: Probe) -> Outcome:
    from enclave.backups.models import RestoreDrill

    drill = RestoreDrill.objects.filter(succeeded=True).order_by("-started_at").first()
    if drill is None:
        return failed("no successful restore drill")
    age = clock.now() - drill.started_at
    if age > MAX_DRILL_AGE:
        return failed(f"last successful drill ({drill.backup_id}) is {age} old")
    return passed(f"last drill restored {drill.backup_id} in {drill.rto_seconds:.1f} s, "
                  f"{age} ago")
