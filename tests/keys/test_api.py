"""The public keyring API: envelope encryption and keyed MACs."""

import pytest

from enclave.keys import api, keyring, services
from enclave.keys.actions import do_rotate_data_key
from enclave.keys.errors import (
    AuthenticationFailed,
    CorruptCiphertext,
    KeyringError,
    MissingKek,
    MissingKeyVersion,
    UnknownPurpose,
    UnsupportedFormat,
    WrongKek,
    WrongPurpose,
)

AAD = b"people.person:42"


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


@pytest.mark.django_db
class TestEncrypt:
    def test_round_trip_returns_the_plaintext(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret value", aad=AAD)
        assert api.decrypt("fields", ciphertext, aad=AAD) == b"s3cret value"

    def test_ciphertext_names_format_purpose_and_key_version(self, memory_keyring):
        ciphertext = api.encrypt("logs", b"line", aad=AAD)
        assert ciphertext.startswith(b"ek1:logs:1:")
        assert api.key_version_of(ciphertext) == ("logs", 1)
        assert b"line" not in ciphertext

    def test_same_plaintext_encrypts_differently_each_time(self, memory_keyring):
        assert api.encrypt("fields", b"x", aad=AAD) != api.encrypt("fields", b"x", aad=AAD)

    def test_flipped_body_byte_is_reported_as_altered(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        with pytest.raises(AuthenticationFailed, match=r"altered"):
            api.decrypt("fields", flip(ciphertext, len(ciphertext) - 3), aad=AAD)

    def test_flipped_header_byte_is_refused(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        with pytest.raises(CorruptCiphertext, match=r"header"):
            api.decrypt("fields", flip(ciphertext, 0), aad=AAD)

    def test_other_associated_data_is_refused(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        with pytest.raises(AuthenticationFailed, match=r"another context"):
            api.decrypt("fields", ciphertext, aad=b"people.person:43")

    def test_truncated_ciphertext_is_reported_as_truncated(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        with pytest.raises(CorruptCiphertext, match=r"truncated"):
            api.decrypt("fields", ciphertext[:20], aad=AAD)

    def test_unknown_format_version_is_named(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        with pytest.raises(UnsupportedFormat, match=r"'ek9'"):
            api.decrypt("fields", b"ek9" + ciphertext[3:], aad=AAD)

    def test_ciphertext_of_another_purpose_is_refused(self, memory_keyring):
        ciphertext = api.encrypt("logs", b"line", aad=AAD)
        with pytest.raises(WrongPurpose, match=r"'logs', not 'fields'"):
            api.decrypt("fields", ciphertext, aad=AAD)

    def test_header_rewritten_to_another_purpose_fails_authentication(self, memory_keyring):
        api.encrypt("fields", b"warm-up", aad=AAD)
        ciphertext = api.encrypt("logs", b"line", aad=AAD)
        forged = ciphertext.replace(b"ek1:logs:", b"ek1:fields:", 1)
        with pytest.raises(AuthenticationFailed):
            api.decrypt("fields", forged, aad=AAD)

    def test_missing_key_version_is_named(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        forged = ciphertext.replace(b"ek1:fields:1:", b"ek1:fields:7:", 1)
        with pytest.raises(MissingKeyVersion, match=r"fields key v7 does not exist"):
            api.decrypt("fields", forged, aad=AAD)

    def test_unknown_purpose_is_refused(self, memory_keyring):
        with pytest.raises(UnknownPurpose, match=r"'payroll'"):
            api.encrypt("payroll", b"x", aad=AAD)

    def test_text_plaintext_is_refused(self, memory_keyring):
        with pytest.raises(KeyringError, match=r"plaintext must be bytes"):
            api.encrypt("fields", "not bytes", aad=AAD)

    def test_values_under_an_older_version_still_decrypt_after_rotation(self, memory_keyring):
        old = api.encrypt("fields", b"before", aad=AAD)
        do_rotate_data_key("fields", actor=None)
        new = api.encrypt("fields", b"after", aad=AAD)
        assert api.key_version_of(new) == ("fields", 2)
        assert api.decrypt("fields", old, aad=AAD) == b"before"

    def test_rotation_rolled_back_elsewhere_does_not_poison_the_cache(self, memory_keyring):
        # A version number reused with new material (a rolled-back rotation) is re-read.
        from enclave.keys.models import DataKey

        do_rotate_data_key("fields", actor=None)
        api.encrypt("fields", b"cached v2", aad=AAD)
        DataKey.objects.filter(purpose="fields", version=2).delete()
        DataKey.objects.filter(purpose="fields", version=1).update(state="primary")
        do_rotate_data_key("fields", actor=None)
        ciphertext = api.encrypt("fields", b"fresh v2", aad=AAD)
        keyring.clear_cache()
        assert api.decrypt("fields", ciphertext, aad=AAD) == b"fresh v2"


@pytest.mark.django_db
class TestKek:
    def test_wrong_kek_is_reported_clearly(self, memory_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        keyring.clear_cache()
        with services.use_provider(services.MemoryKekProvider()) as other:
            other.new_kek()
            with pytest.raises(WrongKek, match=r"KEK memory:1: the KEK is not the one"):
                api.decrypt("fields", ciphertext, aad=AAD)

    def test_replaced_kek_file_is_reported_as_wrong_kek(self, file_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        path = file_keyring.path_for("file:1")
        path.write_text("A" * 43 + "=\n")
        keyring.clear_cache()
        with pytest.raises(WrongKek, match=r"fields v1 cannot be unwrapped with KEK file:1"):
            api.decrypt("fields", ciphertext, aad=AAD)

    def test_deleted_kek_file_is_reported_as_missing(self, file_keyring):
        ciphertext = api.encrypt("fields", b"s3cret", aad=AAD)
        file_keyring.path_for("file:1").unlink()
        keyring.clear_cache()
        with pytest.raises(MissingKek, match=r"KEK file:1 .*kek-1.key does not exist"):
            api.decrypt("fields", ciphertext, aad=AAD)

    def test_data_key_wrapped_for_another_environment_is_refused(self, memory_keyring):
        raw = b"k" * 32
        kek_id, wrapped = memory_keyring.wrap(raw, context=keyring.wrap_context("fields", 1))
        production = {**keyring.wrap_context("fields", 1), "enclave_env": "production"}
        with pytest.raises(WrongKek):
            memory_keyring.unwrap(kek_id, wrapped, context=production)


@pytest.mark.django_db
class TestMac:
    def test_tag_verifies_for_its_message_only(self, memory_keyring):
        version, tag = api.mac("tokens", b"ek_live_abc")
        assert api.verify_mac("tokens", version, b"ek_live_abc", tag)
        assert not api.verify_mac("tokens", version, b"ek_live_abd", tag)

    def test_tag_depends_on_the_purpose_key(self, memory_keyring):
        assert api.mac("tokens", b"m")[1] != api.mac("fields", b"m")[1]

    def test_old_tags_verify_after_rotation_and_new_tags_use_the_new_version(
            self, memory_keyring):
        version, tag = api.mac("tokens", b"token")
        do_rotate_data_key("tokens", actor=None)
        assert api.verify_mac("tokens", version, b"token", tag)
        assert api.mac("tokens", b"token")[0] == version + 1
        assert [v for v, _ in api.mac_all("tokens", b"token")] == [2, 1]
        assert (version, tag) in api.mac_all("tokens", b"token")

    def test_unknown_version_raises_instead_of_answering_false(self, memory_keyring):
        _, tag = api.mac("tokens", b"token")
        with pytest.raises(MissingKeyVersion, match=r"tokens key v9"):
            api.verify_mac("tokens", 9, b"token", tag)
