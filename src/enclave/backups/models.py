"""Backup catalog, restore drills and erasure tombstones.

Per-backup data keys are not in the database at all: they live in the secrets directory
(``backups.keystore``), so a backup restores when the database is lost. Rows of
``ErasureTombstone`` are never copied into a backup (see ``databases.EXCLUDED_TABLES``):
tombstones must outlive every backup they correct.
"""

from __future__ import annotations

from django.db import models

from enclave.core import clock


class Backup(models.Model):
    """One complete backup on the target (written, verified, manifest committed)."""

    backup_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    environment = models.CharField(max_length=20)
    target = models.CharField(max_length=200)
    engine = models.CharField(max_length=20)
    plaintext_bytes = models.BigIntegerField()
    stored_bytes = models.BigIntegerField()
    plaintext_sha256 = models.CharField(max_length=64)
    duration_seconds = models.FloatField()
    expunged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class RestoreDrill(models.Model):
    """One restore drill: which backup, whether every check passed, how long it took."""

    backup_id = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    rto_seconds = models.FloatField()
    succeeded = models.BooleanField()
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]


class ErasureTombstone(models.Model):
    """A record that a person was erased; re-applied to every restored database.

    Holds only the table label and primary key, never personal data.
    """

    model_label = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    erased_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_label", "object_id"],
                                               name="backups_tombstone_unique")]
