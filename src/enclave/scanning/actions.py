"""State changes owned by scanning. Each runs in one transaction with its audit row."""

from __future__ import annotations

from django.db import transaction

from enclave.core import actions as core_actions
from enclave.core import audit, controls
from enclave.core.models import AuditEventType
from enclave.scanning.audit import AuditResult
from enclave.scanning.models import DependencyAudit


def do_record_dependency_audit(result: AuditResult, *, actor=None) -> DependencyAudit:
    """Store ``result`` as the latest dependency audit (read by control DEP-1).

    System action (``actor=None``: the scheduled job) or an operator's CLI run.
    Append-only: every run is a new row, so an older clean audit is never overwritten by
    editing. DEP-1 is then checked again and its stored result replaced in the same
    transaction, so /security shows this audit at once rather than after the next
    15-minute controls run. Returns the row.
    """
    with transaction.atomic():
        row = DependencyAudit.objects.create(
            ran_at=result.ran_at, source=result.source[:512], data_date=result.data_date,
            status=result.status, vulnerable_count=len(result.vulnerabilities),
            unaudited_count=len(result.unaudited), stale=result.stale,
            summary=result.summary(),
        )
        audit.record(
            AuditEventType.DEPENDENCY_AUDIT_RECORDED, actor=actor,
            target_type="dependency_audit", target_id=row.pk,
            extra={"status": row.status, "vulnerable": row.vulnerable_count,
                   "unaudited": row.unaudited_count, "stale": row.stale,
                   "data_date": result.data_date.isoformat() if result.data_date else None,
                   "source": row.source},
        )
        core_actions.do_record_control_results(controls.run_all(only={"DEP-1"}), actor=actor)
    return row
