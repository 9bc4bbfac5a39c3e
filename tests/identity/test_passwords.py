"""Passwords: argon2id storage, upgrade at login, length and content rules."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import override_settings

from enclave.config import ConfigError, load
from enclave.identity.models import Member
from enclave.identity.passwords import NotFromIdentityValidator
from tests.identity.helpers import PASSWORD, https_client, log_in, make_member

WEAK_PARAMS = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}


@pytest.mark.django_db
@pytest.mark.real_password_hashing
class TestStoredHash:
    def test_stored_value_is_never_the_password(self):
        member = make_member()
        stored = Member.objects.get(pk=member.pk).password
        assert PASSWORD not in stored
        assert stored.startswith("argon2$argon2id$v=19$m=65536,t=3,p=1$")

    def test_stored_value_verifies_with_argon2id_itself(self):
        member = make_member()
        encoded = "$" + Member.objects.get(pk=member.pk).password.split("$", 1)[1]
        assert PasswordHasher().verify(encoded, PASSWORD)

    def test_wrong_password_does_not_verify(self):
        member = make_member()
        assert not Member.objects.get(pk=member.pk).check_password(PASSWORD + "x")


@pytest.mark.django_db
@pytest.mark.real_password_hashing
class TestRehashAtLogin:
    def test_hash_under_older_parameters_is_upgraded_at_login(self):
        with override_settings(ARGON2_PARAMETERS=WEAK_PARAMS):
            member = make_member()
        assert "m=19456,t=2,p=1" in Member.objects.get(pk=member.pk).password
        log_in(https_client())
        upgraded = Member.objects.get(pk=member.pk).password
        assert "m=65536,t=3,p=1" in upgraded
        assert Member.objects.get(pk=member.pk).check_password(PASSWORD)

    def test_raising_parameters_upgrades_current_hashes_at_next_login(self):
        member = make_member()
        stronger = {"time_cost": 4, "memory_cost": 65536, "parallelism": 1}
        with override_settings(ARGON2_PARAMETERS=stronger):
            log_in(https_client())
        assert "m=65536,t=4,p=1" in Member.objects.get(pk=member.pk).password

    def test_legacy_pbkdf2_hash_is_upgraded_to_argon2id_at_login(self):
        member = make_member()
        Member.objects.filter(pk=member.pk).update(
            password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
        response = log_in(https_client())
        assert response.status_code == 302
        assert Member.objects.get(pk=member.pk).password.startswith("argon2$argon2id$")

    def test_failed_login_does_not_upgrade_the_hash(self):
        with override_settings(ARGON2_PARAMETERS=WEAK_PARAMS):
            member = make_member()
        log_in(https_client(), password="not the password at all")
        assert "m=19456,t=2,p=1" in Member.objects.get(pk=member.pk).password


class TestLengthRules:
    def test_eleven_characters_are_refused(self):
        with pytest.raises(ValidationError, match="at least 12 characters"):
            validate_password("abcdefghijk", Member(email="x@example.org"))

    def test_long_unicode_passphrase_with_spaces_is_accepted(self):
        validate_password("Grüße aus Köln – 東京 ☃ 2024 ok", Member(email="x@example.org"))

    def test_no_composition_rule_all_lowercase_letters_is_accepted(self):
        validate_password("vividly purple kangaroo tusks", Member(email="x@example.org"))

    def test_more_than_1024_characters_are_refused(self):
        with pytest.raises(ValidationError, match="at most 1024 characters"):
            validate_password("purple kangaroo " * 70, Member(email="x@example.org"))

    def test_1024_characters_are_accepted(self):
        validate_password(("purple kangaroo " * 64)[:1024], Member(email="x@example.org"))

    def test_common_password_is_refused(self):
        with pytest.raises(ValidationError, match="too common"):
            validate_password("password1234", Member(email="x@example.org"))


class TestConfiguredMinimum:
    def test_minimum_can_be_raised(self, tmp_path):
        cfg = load({"ENCLAVE_VAR_DIR": str(tmp_path), "ENCLAVE_PASSWORD_MIN_LENGTH": "16"})
        assert cfg.password_min_length == 16

    def test_minimum_below_eight_is_refused(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_PASSWORD_MIN_LENGTH: must be between 8"):
            load({"ENCLAVE_VAR_DIR": str(tmp_path), "ENCLAVE_PASSWORD_MIN_LENGTH": "7"})


class TestNotFromIdentity:
    validator = NotFromIdentityValidator()

    def _member(self, email="jane.doe@acmecorp.com", names=("Acme Rockets",)):
        member = Member(email=email)
        member.identity_account_names = names
        return member

    @pytest.mark.parametrize("password", [
        "jane.doe@acmecorp.com", "JaneDoe-2024-2025!", "acmecorp acmecorp 1",
        "Acme Rockets 123456", "rockets-acme-jane",
    ])
    def test_password_built_from_email_or_account_name_is_refused(self, password):
        with pytest.raises(ValidationError, match="built from your email address or account"):
            self.validator.validate(password, self._member())

    def test_password_merely_containing_a_name_among_other_words_is_accepted(self):
        self.validator.validate("jane likes purple kangaroos", self._member())

    def test_unrelated_passphrase_is_accepted(self):
        self.validator.validate("correct horse battery staple", self._member())

    @pytest.mark.django_db
    def test_existing_member_account_names_come_from_memberships(self):
        member = make_member("owner@example.com", account_name="Globex Industries")
        with pytest.raises(ValidationError):
            self.validator.validate("Globex Industries 2024", Member.objects.get(pk=member.pk))
