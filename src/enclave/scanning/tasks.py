"""The scheduled dependency audit (core/schedule.py: daily, and once at start).

It runs in the worker, never in the web process, so a slow or unreachable advisory
source cannot delay start-up or requests.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from enclave.scanning.audit import (
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_REQUIREMENTS,
    AuditResult,
    audit_with_advisories,
    failed_audit,
    parse_lock,
)
from enclave.scanning.errors import AuditInputError

logger = logging.getLogger(__name__)


def configured_audit(advisory_db: Path | None, requirements: Path = DEFAULT_REQUIREMENTS, *,
                     max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> AuditResult:
    """Audit ``requirements`` against ``advisory_db`` (an OSV directory) or, when it is
    None, through pip-audit's online service.

    Never raises: a lock or advisory directory that cannot be used, or any crash of the
    audit itself, becomes a result that cannot pass (``error`` set, status incomplete).
    """
    source = f"osv-dir:{advisory_db}" if advisory_db is not None else "pip-audit"
    try:
        lock = parse_lock(requirements)
        if advisory_db is not None:
            return audit_with_advisories(lock, advisory_db, max_age_days=max_age_days)
        from enclave.scanning.pipaudit import audit_with_pip_audit

        return audit_with_pip_audit(lock, max_age_days=max_age_days)
    except AuditInputError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 — a crash is a finding, never a pass or a dead worker.
        reason = f"the audit crashed: {type(exc).__name__}"
        logger.warning("dependency audit crashed: %s", type(exc).__name__)
    return failed_audit(source, str(requirements), reason, max_age_days=max_age_days)


@shared_task(name="enclave.scanning.audit_dependencies")
def audit_dependencies() -> dict:
    """Audit the lock (``ENCLAVE_ADVISORY_DB``, else online), record it for DEP-1.

    Returns the recorded status. If the result cannot be stored (database down), one
    line is logged and ``recorded`` is False; the task itself never fails, so the worker
    carries on with its other jobs and the next run tries again.
    """
    from enclave.scanning.actions import do_record_dependency_audit

    result = configured_audit(settings.CONFIG.advisory_db)
    try:
        row = do_record_dependency_audit(result, actor=None)
    except DatabaseError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.warning("dependency audit could not be recorded: %s", first)
        return {"status": result.status, "recorded": False}
    return {"status": row.status, "recorded": True, "id": row.pk}
