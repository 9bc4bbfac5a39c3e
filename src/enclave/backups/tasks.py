"""Periodic backup jobs (core/schedule.py). Each takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.backups import actions


@shared_task(name="enclave.backups.create_backup")
def create_backup() -> str:
    """The daily backup."""
    return actions.do_create_backup(actor=None).backup_id


@shared_task(name="enclave.backups.prune_backups")
def prune_backups() -> dict:
    """Retention: expunge backups older than 90 days (and thinned ones)."""
    return actions.do_prune_backups(actor=None)


@shared_task(name="enclave.backups.restore_drill")
def restore_drill() -> dict:
    """The weekly restore drill."""
    drill = actions.do_run_restore_drill(actor=None)
    return {"backup": drill.backup_id, "succeeded": drill.succeeded,
            "rto_seconds": drill.rto_seconds}


@shared_task(name="enclave.backups.sync_erasure_journal")
def sync_erasure_journal() -> int:
    """Write erasure tombstones the journal missed (a stop between commit and append)."""
    from enclave.backups import tombstones

    return tombstones.sync_journal()
