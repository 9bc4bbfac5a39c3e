"""The one schedule of periodic jobs. Celery beat reads it (embedded and production alike).

Later issues add retention, key age and restore drills here. Every job takes "now" from
:mod:`enclave.core.clock`, so tests run them under a moved clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    every_seconds: int
    run_at_start: bool = False


SCHEDULE: tuple[Job, ...] = (
    # Jobs marked run_at_start are queued in this order when `enclave serve` starts; the
    # security check comes after the backup and drill so its first results already see
    # them. The dependency audit comes after the security check: it may wait on an
    # online advisory service, and it re-checks DEP-1 itself once it has recorded.
    Job("key-rotation", "enclave.keys.rotate_expired_keys", every_seconds=6 * 3600,
        run_at_start=True),
    Job("log-retention", "enclave.logs.expunge_old_logs", every_seconds=3600,
        run_at_start=True),
    Job("identity-housekeeping", "enclave.identity.purge_expired_records",
        every_seconds=24 * 3600),
    Job("backup-create", "enclave.backups.create_backup", every_seconds=24 * 3600,
        run_at_start=True),
    Job("backup-retention", "enclave.backups.prune_backups", every_seconds=6 * 3600),
    Job("erasure-journal", "enclave.backups.sync_erasure_journal", every_seconds=24 * 3600,
        run_at_start=True),
    Job("backup-restore-drill", "enclave.backups.restore_drill", every_seconds=7 * 24 * 3600,
        run_at_start=True),
    Job("security-controls", "enclave.core.check_controls", every_seconds=15 * 60,
        run_at_start=True),
    Job("dependency-audit", "enclave.scanning.audit_dependencies", every_seconds=24 * 3600,
        run_at_start=True),
    Job("events-message-ids", "enclave.events.purge_message_ids", every_seconds=3600),
    Job("people-held-imports", "enclave.people.purge_expired_imports", every_seconds=900),
    Job("segments-changed", "enclave.audience.refresh_changed", every_seconds=60),
    Job("segments-time", "enclave.audience.refresh_time_dependent", every_seconds=3600),
    Job("send-outbox", "enclave.messaging.send_outbox", every_seconds=15),
    Job("deliver-webhooks", "enclave.webhooks.deliver", every_seconds=5),
    Job("billing-housekeeping", "enclave.billing.housekeeping", every_seconds=3600),
)


def beat_schedule() -> dict:
    return {job.name: {"task": job.task, "schedule": float(job.every_seconds)} for job in SCHEDULE}
