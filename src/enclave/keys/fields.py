"""Encrypted model fields for secrets (TOTP secrets, webhook secrets, ...).

``EncryptedTextField`` (str) and ``EncryptedBinaryField`` (bytes) store the text form of
a keyring ciphertext (``ek1:<purpose>:<version>:<base64url>``) in a text column. The
associated data binds each value to its table, column and row, so a ciphertext copied to
another row or column fails to decrypt (:class:`~enclave.keys.errors.AuthenticationFailed`).

A new row has no primary key before insert, so the row binding uses a per-row random id:
the model must declare a unique UUID field, named by the ``row_id_field`` option
(default ``"row_id"``)::

    class Webhook(models.Model):
        row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
        secret = EncryptedTextField()

Values are decrypted lazily on attribute access (the descriptor knows the row). Saving
re-encrypts under the primary key; reading a value under an older key version rewrites
it in place (compare-and-swap) when ``reencrypt_on_read`` is on (default). ``values()``
and ``values_list()`` return the stored ciphertext (:class:`Sealed`), never plaintext.
Encrypted fields cannot be filtered on by value.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.apps import apps as global_apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, models, transaction
from django.db.models.query_utils import DeferredAttribute

from enclave.core import clock
from enclave.keys import api, envelope, keyring
from enclave.keys.errors import KeyringError

logger = logging.getLogger(__name__)
FIELD_AAD_LABEL = b"enclave-field"
_PRIMARY_HINT_TTL = dt.timedelta(seconds=30)


class Sealed(str):
    """A ciphertext in text form as stored in the database (not decrypted)."""

    __slots__ = ()


_registry: list[tuple[type[models.Model], EncryptedFieldMixin]] = []
_extra_models: set[type[models.Model]] = set()
_primary_hint: dict[str, tuple[int, dt.datetime]] = {}


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedFieldMixin]]:
    """Every (model, field) pair with an encrypted field in an installed app (plus models
    added with :func:`track_model`), in a stable order."""
    installed = {cfg.label for cfg in global_apps.get_app_configs()}
    return sorted(
        ((m, f) for m, f in _registry if m._meta.app_label in installed or m in _extra_models),
        key=lambda pair: (pair[0]._meta.label, pair[1].name),
    )


def track_model(model: type[models.Model], *, enabled: bool = True) -> None:
    """Tests: include a model of a non-installed app label in :func:`encrypted_fields`."""
    (_extra_models.add if enabled else _extra_models.discard)(model)


def primary_version_hint(purpose: str) -> int:
    """The primary version of ``purpose``, cached briefly. Only decides whether to try a
    read-through re-encryption (which re-checks the real primary), never what to encrypt."""
    now = clock.now()
    hint = _primary_hint.get(purpose)
    if hint is None or not (hint[1] <= now < hint[1] + _PRIMARY_HINT_TTL):
        hint = (keyring.primary(purpose).version, now)
        _primary_hint[purpose] = hint
    return hint[0]


class EncryptedAttribute(DeferredAttribute):
    """Decrypts a loaded ciphertext on first access, when the row (and so the AAD) is known."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            value = self.field.unseal(instance, value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value) -> None:
        # A data descriptor, so reads always pass through __get__ (never straight from
        # __dict__), and a loaded ciphertext is never handed out undecrypted.
        instance.__dict__[self.field.attname] = value


class EncryptedFieldMixin:
    descriptor_class = EncryptedAttribute
    python_type: type = str

    def __init__(self, *args, purpose: str = "fields", row_id_field: str = "row_id",
                 reencrypt_on_read: bool = True, **kwargs) -> None:
        for option in ("unique", "db_index", "primary_key"):
            if kwargs.get(option):
                raise TypeError(f"encrypted fields cannot be {option} (ciphertexts are random)")
        keyring.check_purpose(purpose)
        self.purpose = purpose
        self.row_id_field = row_id_field
        self.reencrypt_on_read = reencrypt_on_read
        super().__init__(*args, **kwargs)

    # --- schema -------------------------------------------------------------------------
    def get_internal_type(self) -> str:
        return "TextField"

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.purpose != "fields":
            kwargs["purpose"] = self.purpose
        if self.row_id_field != "row_id":
            kwargs["row_id_field"] = self.row_id_field
        if not self.reencrypt_on_read:
            kwargs["reencrypt_on_read"] = False
        return name, path, args, kwargs

    def contribute_to_class(self, cls, name, *args, **kwargs) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        # Only real models (not migration-state copies, abstract bases or proxies).
        if cls._meta.apps is global_apps and not cls._meta.abstract and not cls._meta.proxy:
            _registry.append((cls, self))

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        opts = self.model._meta
        try:
            row_field = opts.get_field(self.row_id_field)
        except FieldDoesNotExist:
            row_field = None
        if row_field is None or not isinstance(row_field, models.UUIDField) \
                or not row_field.unique:
            errors.append(checks.Error(
                f"encrypted field {opts.label}.{self.name} needs a unique UUIDField named "
                f"{self.row_id_field!r} (row_id_field) to bind ciphertexts to their row",
                obj=self, id="enclave.E610"))
        return errors

    # --- database round trip --------------------------------------------------------------
    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, Sealed):
            return str(value)
        raise KeyringError(
            f"encrypted field {self.model._meta.label}.{self.name} cannot take a plaintext "
            "value here (query filters and bulk_update cannot encrypt): assign it on the "
            "instance and save()")

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if value is None:
            return None
        if isinstance(value, Sealed):
            _purpose, version = envelope.peek_text(value)
            if version == keyring.primary(self.purpose).version:
                return value
            value = self.unseal(model_instance, value, reencrypt=False)
        return self.seal(model_instance, value)

    # --- encryption -----------------------------------------------------------------------
    def aad(self, instance) -> bytes:
        row_id = getattr(instance, self.row_id_field, None)
        if row_id is None or row_id == "":
            raise KeyringError(f"{self.model._meta.label}.{self.row_id_field} is empty: "
                               f"encrypted field {self.name} needs a row id")
        return b"\x00".join((FIELD_AAD_LABEL, self.model._meta.db_table.encode(),
                             self.column.encode(), str(row_id).encode()))

    def _to_bytes(self, value) -> bytes:
        raise NotImplementedError

    def _from_bytes(self, data: bytes):
        raise NotImplementedError

    def seal(self, instance, value) -> Sealed:
        ciphertext = api.encrypt(self.purpose, self._to_bytes(value), aad=self.aad(instance))
        return Sealed(envelope.to_text(ciphertext))

    def unseal(self, instance, sealed: Sealed, *, reencrypt: bool | None = None):
        """Decrypt a stored value of ``instance``; may rewrite it under the primary key."""
        try:
            ciphertext = envelope.from_text(sealed)
            plaintext = api.decrypt(self.purpose, ciphertext, aad=self.aad(instance))
        except KeyringError as exc:
            exc.args = (f"{self.model._meta.label}.{self.name}: {exc}",)
            raise
        value = self._from_bytes(plaintext)
        if self.reencrypt_on_read if reencrypt is None else reencrypt:
            self._read_through(instance, sealed, value)
        return value

    def _read_through(self, instance, sealed: Sealed, value) -> None:
        if instance.pk is None:
            return
        _, version = envelope.peek_text(sealed)
        if version == primary_version_hint(self.purpose):
            return
        try:
            with transaction.atomic():
                if version == keyring.primary(self.purpose).version:
                    return
                fresh = self.seal(instance, value)
                # Compare-and-swap: a concurrent write wins over this rewrite.
                self.model._base_manager.filter(
                    pk=instance.pk, **{self.attname: sealed}).update(**{self.attname: fresh})
        except DatabaseError:
            logger.warning("read-through re-encryption of %s.%s failed; left for "
                           "`enclave keys reencrypt`", self.model._meta.label, self.name)

    def count_version(self, model, version: int) -> int:
        prefix = envelope.text_prefix(self.purpose, version)
        return model._base_manager.filter(**{f"{self.attname}__startswith": prefix}).count()


class EncryptedTextField(EncryptedFieldMixin, models.TextField):
    """A secret string, stored encrypted and bound to its table, column and row."""

    def _to_bytes(self, value) -> bytes:
        if not isinstance(value, str):
            raise KeyringError(f"{self.model._meta.label}.{self.name} takes str, "
                               f"got {type(value).__name__}")
        return value.encode("utf-8")

    def _from_bytes(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedBinaryField(EncryptedFieldMixin, models.TextField):
    """Secret bytes, stored encrypted and bound to its table, column and row."""

    def _to_bytes(self, value) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise KeyringError(f"{self.model._meta.label}.{self.name} takes bytes, "
                               f"got {type(value).__name__}")
        return bytes(value)

    def _from_bytes(self, data: bytes) -> bytes:
        return data
