"""Core tables: deployment stamp, audit log, credential exposures, control results."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from enclave.core import clock


class AuditEventType(models.IntegerChoices):
    """Every audited event. Append-only: numbers are never reused or renumbered.

    Ranges: 100–199 deployment/system, 200–299 identity, 300–399 accounts and team,
    400–499 people, 500–599 API and keys, 600–699 keys/logs, 700–799 backups,
    800–899 billing, 900–999 incidents.
    """

    ENVIRONMENT_STAMPED = 101, "environment stamped"
    CREDENTIAL_EXPOSED = 110, "credential exposed over plain HTTP"
    CONTROLS_RECORDED = 120, "security controls recorded"
    DEPENDENCY_AUDIT_RECORDED = 121, "dependency audit recorded"
    OWNER_SETUP_ISSUED = 201, "owner set-up link issued"
    OWNER_CREATED = 202, "first owner created"


class DeploymentStamp(models.Model):
    """One row: which environment this database belongs to. Written at first migrate."""

    environment = models.CharField(max_length=16)
    instance_id = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(environment__in=["production", "staging", "test", "dev"]),
                name="deploymentstamp_environment_valid",
            )
        ]


class AuditEvent(models.Model):
    """Append-only audit log. Personal data is referenced by id in ``extra_data``, never copied."""

    created_at = models.DateTimeField(default=clock.now, db_index=True)
    # No `choices=` on purpose: adding an event type must not need a migration. Values are
    # checked against AuditEventType by audit.record().
    event_type = models.PositiveIntegerField()
    account_id = models.BigIntegerField(null=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True)
    trace_id = models.CharField(max_length=32, blank=True)
    extra_data = models.JSONField(default=dict)
    scrubbed = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["account_id", "created_at"])]


class CredentialExposure(models.Model):
    """A credential that arrived over plain HTTP. Stores a keyed fingerprint, never the value."""

    created_at = models.DateTimeField(default=clock.now)
    kind = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=64, db_index=True)
    path = models.CharField(max_length=512)
    ip = models.GenericIPAddressField(null=True)


class ControlResult(models.Model):
    """The latest result of each security control (one row per control id)."""

    control_id = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=8)
    evidence = models.TextField()
    public_summary = models.CharField(max_length=300)
    checked_at = models.DateTimeField()
