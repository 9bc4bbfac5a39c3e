"""People: the marketing contacts of an account, their tags and custom fields.

Each field's personal-data class is in the one registry (``access.personal_data``);
custom fields carry theirs on ``FieldDefinition.pd_class``.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import models

from enclave.access import personal_data
from enclave.core import clock
from enclave.keys.fields import EncryptedTextField

CONSENT_CHOICES = ("unknown", "granted", "withdrawn")
FIELD_TYPES = ("text", "number", "date", "boolean", "select")
# The visibility classes a custom field may carry (the registry's, less "secret").
PD_CLASSES = (personal_data.NONE, personal_data.PERSONAL, personal_data.SENSITIVE)


class Person(models.Model):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="people")
    email = models.CharField(max_length=254, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    company = models.CharField(max_length=200, blank=True)
    address = models.CharField(max_length=500, blank=True)
    country = models.CharField(max_length=2, blank=True)
    # An IANA time-zone name ("Europe/Paris"); blank when unknown. Broadcasts sent at
    # each recipient's local time use it (``messaging.actions.broadcasts``).
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    consent = models.CharField(max_length=16, default="unknown",
                               choices=[(c, c) for c in CONSENT_CHOICES])
    custom = models.JSONField(default=dict, blank=True)
    # Values of custom fields the account marked "encrypt at rest", as one JSON object
    # encrypted by the keyring (purpose "fields"; AAD binds it to this row via row_id).
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sealed_custom = EncryptedTextField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "id"]),
            models.Index(fields=["account", "email"]),
            models.Index(fields=["account", "external_id"]),
            # Segment upkeep: the people changed since a watermark (audience.membership).
            models.Index(fields=["account", "updated_at"], name="person_account_updated"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["account", "email"], condition=~models.Q(email=""),
                                    name="person_email_unique"),
            models.UniqueConstraint(fields=["account", "external_id"],
                                    condition=~models.Q(external_id=""),
                                    name="person_external_id_unique"),
            models.CheckConstraint(condition=models.Q(consent__in=CONSENT_CHOICES),
                                   name="person_consent_valid"),
        ]

    def __str__(self) -> str:  # never personal data: this may end up in logs
        return f"person:{self.pk}"


class Tag(models.Model):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"],
                                               name="tag_name_unique")]


class PersonTag(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="person_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="person_tags")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["person", "tag"],
                                               name="persontag_unique")]


class FieldDefinition(models.Model):
    """A custom field of one account; values live in ``Person.custom[key]``."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="field_definitions")
    key = models.SlugField(max_length=40)
    label = models.CharField(max_length=80)
    type = models.CharField(max_length=8, choices=[(t, t) for t in FIELD_TYPES])
    options = models.JSONField(default=list, blank=True)
    pd_class = models.CharField(max_length=9, default="personal",
                                choices=[(c, c) for c in PD_CLASSES])
    # Chosen when the field is defined (not changeable later): values are kept in
    # Person.sealed_custom, encrypted at rest, never in the searchable JSON column.
    encrypt_at_rest = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "key"], name="fielddef_key_unique"),
            models.CheckConstraint(condition=models.Q(type__in=FIELD_TYPES),
                                   name="fielddef_type_valid"),
            models.CheckConstraint(condition=models.Q(pd_class__in=PD_CLASSES),
                                   name="fielddef_pd_class_valid"),
        ]


class PendingImport(models.Model):
    """A previewed CSV import waiting for the member's confirmation.

    The file is kept encrypted by the keyring (purpose "fields", bound to this row), only
    for its member and account, and deleted on confirm, on cancel, on expiry (the
    housekeeping job) and whenever anyone in the account is erased (the personal-data
    registry links it to every person of its account), so it never holds an erased
    person's data. Replaces keeping the file in the session.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="+")
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    data = EncryptedTextField()
    columns = models.JSONField(default=list)
    rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()


def sealed_values(person: Person) -> dict:
    """The decrypted "encrypt at rest" custom values of ``person`` (empty when none)."""
    return json.loads(person.sealed_custom) if person.sealed_custom else {}
