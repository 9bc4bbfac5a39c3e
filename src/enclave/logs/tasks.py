"""Periodic jobs of the logs app (scheduled in enclave.core.schedule)."""

from __future__ import annotations

from celery import shared_task

from enclave.logs import actions


@shared_task(name="enclave.logs.expunge_old_logs")
def expunge_old_logs() -> dict:
    """Retention: delete log segments older than ENCLAVE_LOG_RETENTION_DAYS (≤ 90)."""
    return {"expunged": actions.do_expunge_logs()}
