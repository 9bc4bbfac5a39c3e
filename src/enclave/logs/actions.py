"""State changes of the log store: operator reads (audited) and retention expunges."""

from __future__ import annotations

import datetime as dt
import getpass

import structlog
from django.conf import settings
from django.db import transaction

from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.logs.pipeline import SECURITY_LOGGER
from enclave.logs.store import default_store

security_log = structlog.get_logger(SECURITY_LOGGER)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def do_record_log_access(event_type: AuditEventType, *, detail: dict, actor=None) -> None:
    """Audit one operator use of the log store (tail, search, verify) and log it as a
    security event. ``detail`` holds parameters, never log content or search text."""
    detail = {**detail, "os_user": _os_user()}
    with transaction.atomic():
        audit.record(event_type, actor=actor, target_type="logs", target_id="store",
                     extra=detail)
    security_log.info("log store accessed", action=AuditEventType(event_type).name.lower(),
                      **detail)


def retention_cutoff() -> dt.datetime:
    return clock.now() - dt.timedelta(days=settings.CONFIG.log_retention_days)


def do_expunge_logs(*, actor=None) -> list[str]:
    """Delete segments older than ENCLAVE_LOG_RETENTION_DAYS. Returns their names.

    The files go first (the store's anchor keeps the chain verifiable), then the audit
    row: a failure between the two leaves logs deleted as policy requires, unaudited; the
    reverse order could audit a deletion that never happened.
    """
    cutoff = retention_cutoff()
    removed = default_store().expunge(cutoff)
    if removed:
        with transaction.atomic():
            audit.record(AuditEventType.LOGS_EXPUNGED, actor=actor, target_type="logs",
                         target_id="store",
                         extra={"segments": len(removed), "first": removed[0],
                                "last": removed[-1], "cutoff": cutoff.isoformat()})
        security_log.info("log segments expunged", segments=len(removed),
                          cutoff=cutoff.isoformat())
    return removed
