"""Scanning tables: the recorded dependency audits (append-only, newest one counts)."""

from __future__ import annotations

from django.db import models

from enclave.core import clock

AUDIT_STATUSES = ("clean", "vulnerable", "incomplete")


class DependencyAudit(models.Model):
    """One run of ``enclave deps audit``. Written only by ``do_record_dependency_audit``.

    ``summary`` holds package names, versions, advisory ids and scrubbed reasons: public
    facts about our dependencies, never credentials or personal data.
    """

    ran_at = models.DateTimeField(default=clock.now, db_index=True)
    source = models.CharField(max_length=512)  # "osv-dir:<path>" or "pip-audit"
    data_date = models.DateField(null=True)  # date of the advisory data; null = unknown
    status = models.CharField(max_length=16, choices=[(s, s) for s in AUDIT_STATUSES])
    vulnerable_count = models.PositiveIntegerField()  # (package, advisory) findings
    unaudited_count = models.PositiveIntegerField()
    stale = models.BooleanField()
    summary = models.JSONField(default=dict)

    class Meta:
        get_latest_by = ("ran_at", "id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=AUDIT_STATUSES),
                name="dependencyaudit_status_valid",
            ),
            # "clean" must mean what it says, whoever writes the row.
            models.CheckConstraint(
                condition=~models.Q(status="clean")
                | models.Q(vulnerable_count=0, unaudited_count=0, stale=False),
                name="dependencyaudit_clean_is_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"dependency audit {self.ran_at:%Y-%m-%d %H:%M} {self.status}"
