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
    """A subject (a ``person``; see ``access.personal_data.SUBJECTS``) that was erased.

    Ids only, never personal data. Never copied into a backup, and mirrored into an
    append-only journal in the secrets directory (``backups.tombstones``), so a restore
    erases them again even after the database itself was lost.
    """

    subject = models.CharField(max_length=16)
    account_id = models.BigIntegerField(null=True)
    object_id = models.BigIntegerField()
    # Tells the erased row from a later one given the same id (access.personal_data
    # .SUBJECT_ROWS; a person's row_id UUID). Empty for subjects without one.
    row_key = models.CharField(max_length=64, blank=True, default="")
    erased_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "object_id", "row_key"],
                                               name="backups_tombstone_subject_unique")]
