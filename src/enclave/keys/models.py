"""Keyring tables: wrapped data keys, KEK records, re-encryption progress."""

from __future__ import annotations

from django.db import models

from enclave.core import clock

PURPOSES = ("fields", "logs", "backups", "tokens")


class KeyState(models.TextChoices):
    PRIMARY = "primary", "primary"  # encrypts new values (one per purpose)
    ACTIVE = "active", "active"  # still decrypts older values
    RETIRED = "retired", "retired"  # key material destroyed


class DataKey(models.Model):
    """One version of one purpose's data key, wrapped by a KEK. Never stored unwrapped."""

    purpose = models.CharField(max_length=16)
    version = models.PositiveIntegerField()
    wrapped = models.BinaryField()
    kek_id = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=clock.now)
    state = models.CharField(max_length=8, choices=KeyState.choices)
    retired_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version"], name="datakey_purpose_version"),
            models.UniqueConstraint(fields=["purpose"], condition=models.Q(state="primary"),
                                    name="datakey_one_primary_per_purpose"),
            models.CheckConstraint(condition=models.Q(purpose__in=PURPOSES),
                                   name="datakey_purpose_known"),
            models.CheckConstraint(condition=models.Q(version__gte=1),
                                   name="datakey_version_positive"),
        ]


class KeyEncryptionKey(models.Model):
    """A KEK this deployment has used: its id (never its material) and when it began."""

    kek_id = models.CharField(max_length=300, unique=True)
    provider = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=clock.now)


class ReencryptionRun(models.Model):
    """Progress of ``enclave keys reencrypt``: a cursor per encrypted column, so an
    interrupted run resumes where it stopped."""

    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True)
    batch_size = models.PositiveIntegerField()
    cursor = models.JSONField(default=dict)  # "app_label.Model.field" -> last primary key done
    reencrypted = models.PositiveIntegerField(default=0)
