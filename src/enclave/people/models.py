"""People: the marketing contacts of an account, their tags and custom fields.

Each built-in field's personal-data class is in ``visibility.FIELD_CLASSES`` (the one
table); custom fields carry theirs on ``FieldDefinition.pd_class``.
"""

from __future__ import annotations

import json
import uuid

from django.db import models

from enclave.core import clock
from enclave.keys.fields import EncryptedTextField

CONSENT_CHOICES = ("unknown", "granted", "withdrawn")
FIELD_TYPES = ("text", "number", "date", "boolean", "select")
PD_CLASSES = ("none", "personal", "sensitive")


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


class ErasureTombstone(models.Model):
    """An erased person's id, kept so a restore from an older backup can erase them again.

    Holds ids only — nothing that identifies the person.
    """

    account_id = models.BigIntegerField(db_index=True)
    person_id = models.BigIntegerField()
    erased_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account_id", "person_id"],
                                               name="tombstone_unique")]


def sealed_values(person: Person) -> dict:
    """The decrypted "encrypt at rest" custom values of ``person`` (empty when none)."""
    return json.loads(person.sealed_custom) if person.sealed_custom else {}
