"""Encrypted model fields: storage, row/column binding, read-through re-encryption."""

import uuid

import pytest
from django.db import models
from django.test.utils import isolate_apps

from enclave.keys import envelope
from enclave.keys.actions import do_rotate_data_key
from enclave.keys.errors import AuthenticationFailed, KeyringError
from enclave.keys.fields import EncryptedTextField, Sealed


def stored(model, pk, column="secret") -> str:
    return model.objects.filter(pk=pk).values_list(column, flat=True).get()


@pytest.mark.django_db
class TestEncryptedFields:
    def test_text_and_bytes_round_trip(self, holder, memory_keyring):
        row = holder.objects.create(secret="JBSWY3DPEHPK3PXP", blob=b"\x00\xffwebhook")
        fresh = holder.objects.get(pk=row.pk)
        assert fresh.secret == "JBSWY3DPEHPK3PXP"
        assert fresh.blob == b"\x00\xffwebhook"

    def test_database_holds_only_self_describing_ciphertext(self, holder, memory_keyring):
        row = holder.objects.create(secret="JBSWY3DPEHPK3PXP")
        raw = stored(holder, row.pk)
        assert raw.startswith("ek1:fields:1:")
        assert "JBSWY3DPEHPK3PXP" not in raw
        assert isinstance(raw, Sealed)

    def test_null_stays_null(self, holder, memory_keyring):
        row = holder.objects.create(secret=None)
        assert holder.objects.get(pk=row.pk).secret is None

    def test_ciphertext_copied_to_another_row_is_refused(self, holder, memory_keyring):
        a = holder.objects.create(secret="alice-secret")
        b = holder.objects.create(secret="bob-secret")
        holder.objects.filter(pk=b.pk).update(secret=Sealed(stored(holder, a.pk)))
        with pytest.raises(AuthenticationFailed,
                           match=r"keys_tests\.SecretHolder\.secret: .*another"):
            _ = holder.objects.get(pk=b.pk).secret

    def test_ciphertext_copied_to_another_column_is_refused(self, holder, memory_keyring):
        row = holder.objects.create(secret="text", blob=b"bytes")
        holder.objects.filter(pk=row.pk).update(blob=Sealed(stored(holder, row.pk, "secret")))
        with pytest.raises(AuthenticationFailed):
            _ = holder.objects.get(pk=row.pk).blob

    def test_changed_row_id_makes_the_value_unreadable(self, holder, memory_keyring):
        row = holder.objects.create(secret="bound")
        holder.objects.filter(pk=row.pk).update(row_id=uuid.uuid4())
        with pytest.raises(AuthenticationFailed):
            _ = holder.objects.get(pk=row.pk).secret

    def test_tampered_stored_value_is_refused(self, holder, memory_keyring):
        row = holder.objects.create(secret="bound")
        raw = stored(holder, row.pk)
        tampered = raw[:-2] + ("A" if raw[-2] != "A" else "B") + raw[-1]
        holder.objects.filter(pk=row.pk).update(secret=Sealed(tampered))
        with pytest.raises(AuthenticationFailed, match=r"altered"):
            _ = holder.objects.get(pk=row.pk).secret

    def test_filtering_by_plaintext_is_refused(self, holder, memory_keyring):
        with pytest.raises(KeyringError, match=r"cannot take a plaintext value"):
            list(holder.objects.filter(secret="guess"))

    def test_wrong_python_type_is_refused_on_save(self, holder, memory_keyring):
        with pytest.raises(KeyringError, match=r"takes bytes, got str"):
            holder.objects.create(blob="text")

    def test_deferred_field_is_loaded_and_decrypted(self, holder, memory_keyring):
        row = holder.objects.create(secret="deferred")
        assert holder.objects.defer("secret").get(pk=row.pk).secret == "deferred"

    def test_save_after_rotation_moves_value_to_the_primary_key(self, holder, memory_keyring):
        row = holder.objects.create(secret="rotate me")
        do_rotate_data_key("fields", actor=None)
        fresh = holder.objects.get(pk=row.pk)
        fresh.note = "touched"
        fresh.save(update_fields=["note", "secret"])
        assert stored(holder, row.pk).startswith("ek1:fields:2:")

    def test_read_after_rotation_rewrites_the_value_under_the_primary_key(
            self, holder, memory_keyring):
        from enclave.keys import fields

        row = holder.objects.create(secret="read me")
        do_rotate_data_key("fields", actor=None)
        fields._primary_hint.clear()
        assert holder.objects.get(pk=row.pk).secret == "read me"
        assert stored(holder, row.pk).startswith("ek1:fields:2:")
        assert holder.objects.get(pk=row.pk).secret == "read me"

    def test_unchanged_value_keeps_its_ciphertext_on_save(self, holder, memory_keyring):
        row = holder.objects.create(secret="stable")
        before = stored(holder, row.pk)
        fresh = holder.objects.get(pk=row.pk)
        fresh.note = "x"
        fresh.save()
        assert stored(holder, row.pk) == before

    def test_stored_value_parses_without_a_key(self, holder, memory_keyring):
        row = holder.objects.create(secret="x")
        assert envelope.peek_text(stored(holder, row.pk)) == ("fields", 1)


class TestFieldDeclaration:
    @isolate_apps("enclave.keys")
    def test_model_without_a_unique_row_id_fails_the_check(self):
        class Leaky(models.Model):
            secret = EncryptedTextField()

            class Meta:
                app_label = "keys"

        errors = Leaky._meta.get_field("secret").check()
        assert [e.id for e in errors] == ["enclave.E610"]
        assert "unique UUIDField named 'row_id'" in errors[0].msg

    @isolate_apps("enclave.keys")
    def test_model_with_a_unique_row_id_passes_the_check(self):
        class Sound(models.Model):
            handle = models.UUIDField(default=uuid.uuid4, unique=True)
            secret = EncryptedTextField(row_id_field="handle")

            class Meta:
                app_label = "keys"

        assert Sound._meta.get_field("secret").check() == []

    def test_unique_encrypted_field_is_refused(self):
        with pytest.raises(TypeError, match=r"cannot be unique"):
            EncryptedTextField(unique=True)

    def test_migration_keeps_the_options(self):
        field = EncryptedTextField(purpose="tokens", row_id_field="handle")
        _, path, _, kwargs = field.deconstruct()
        assert path == "enclave.keys.fields.EncryptedTextField"
        assert kwargs == {"purpose": "tokens", "row_id_field": "handle"}
