"""KEY-1 (key age), KEY-2 (secrets directory), KEY-3 (no plaintext secrets), enclave.E601."""

import dataclasses
import datetime as dt
import uuid

import pytest
from django.db import models
from django.test.utils import isolate_apps

from enclave.core import clock, controls
from enclave.keys import actions as key_actions
from enclave.keys import api
from enclave.keys.actions import do_rotate_data_key, do_rotate_kek
from enclave.keys.checks import check_file_kek
from enclave.keys.controls import (
    check_key_age,
    check_no_plaintext_secrets,
    check_secrets_dir,
    plaintext_secret_columns,
)
from enclave.keys.fields import EncryptedTextField

PROBE = controls.Probe("https://127.0.0.1:1", None, "localhost", None)


def use_dirs(settings, tmp_path, *, secrets="secrets", data="data"):
    settings.CONFIG = dataclasses.replace(settings.CONFIG, secrets_dir=tmp_path / secrets,
                                          data_dir=tmp_path / data)
    return tmp_path / secrets


@pytest.mark.django_db
class TestKeyAgeControl:
    def test_fresh_keys_pass(self, file_keyring):
        key_actions.ensure_data_keys()
        assert check_key_age(PROBE).status == controls.PASS

    def test_fails_after_91_days_and_passes_after_rotation(self, file_keyring):
        key_actions.ensure_data_keys()
        with clock.travel(dt.timedelta(days=91)):
            outcome = check_key_age(PROBE)
            assert outcome.status == controls.FAIL
            assert "fields v1 is 91 days old" in outcome.evidence
            assert "KEK file:1 is 91 days old" in outcome.evidence
            for purpose in ("fields", "logs", "backups", "tokens"):
                do_rotate_data_key(purpose, actor=None)
            do_rotate_kek(actor=None)
            assert check_key_age(PROBE).status == controls.PASS

    def test_purpose_without_a_key_fails(self, file_keyring):
        api.encrypt("fields", b"x", aad=b"")
        outcome = check_key_age(PROBE)
        assert outcome.status == controls.FAIL
        assert "logs: no primary key" in outcome.evidence

    def test_control_is_registered(self):
        assert {"KEY-1", "KEY-2", "KEY-3"} <= set(controls.registry())


class TestSecretsDirControl:
    def test_private_directory_passes(self, settings, tmp_path):
        path = use_dirs(settings, tmp_path)
        path.mkdir(mode=0o700)
        (path / "kek-1.key").write_text("x")
        (path / "kek-1.key").chmod(0o600)
        assert check_secrets_dir(PROBE).status == controls.PASS

    def test_directory_open_to_others_fails(self, settings, tmp_path):
        path = use_dirs(settings, tmp_path)
        path.mkdir()
        path.chmod(0o755)
        outcome = check_secrets_dir(PROBE)
        assert outcome.status == controls.FAIL
        assert "mode 0755 (want 0700)" in outcome.evidence

    def test_file_open_to_group_fails(self, settings, tmp_path):
        path = use_dirs(settings, tmp_path)
        path.mkdir(mode=0o700)
        (path / "kek-1.key").write_text("x")
        (path / "kek-1.key").chmod(0o640)
        outcome = check_secrets_dir(PROBE)
        assert outcome.status == controls.FAIL
        assert "kek-1.key has mode 0640 (want 0600)" in outcome.evidence

    def test_secrets_inside_the_data_directory_fail(self, settings, tmp_path):
        path = use_dirs(settings, tmp_path, secrets="data/secrets")
        path.mkdir(parents=True, mode=0o700)
        outcome = check_secrets_dir(PROBE)
        assert outcome.status == controls.FAIL
        assert "inside the data directory" in outcome.evidence

    def test_data_inside_the_secrets_directory_fails(self, settings, tmp_path):
        path = use_dirs(settings, tmp_path, data="secrets/data")
        path.mkdir(mode=0o700)
        outcome = check_secrets_dir(PROBE)
        assert outcome.status == controls.FAIL
        assert "is inside the secrets directory" in outcome.evidence


class TestPlaintextSecretsControl:
    @isolate_apps("enclave.keys")
    def test_plaintext_secret_column_is_found(self):
        class Webhook(models.Model):
            signing_secret = models.CharField(max_length=64)
            secret_hash = models.CharField(max_length=64)
            token_expires_at = models.DateTimeField()

            class Meta:
                app_label = "keys"

        assert plaintext_secret_columns([Webhook]) == ["keys.Webhook.signing_secret"]

    @isolate_apps("enclave.keys")
    def test_encrypted_secret_column_passes(self):
        class Device(models.Model):
            row_id = models.UUIDField(default=uuid.uuid4, unique=True)
            totp_secret = EncryptedTextField()

            class Meta:
                app_label = "keys"

        assert plaintext_secret_columns([Device]) == []

    def test_installed_models_pass(self):
        outcome = check_no_plaintext_secrets(PROBE)
        assert outcome.status == controls.PASS, outcome.evidence


class TestFileKekCheck:
    def test_kek_file_open_to_others_stops_start(self, settings, tmp_path):
        path = use_dirs(settings, tmp_path)
        path.mkdir(mode=0o700)
        (path / "kek-1.key").write_text("x")
        (path / "kek-1.key").chmod(0o644)
        errors = check_file_kek()
        assert [e.id for e in errors] == ["enclave.E601"]
        assert errors[0].msg.startswith("ENCLAVE_SECRETS_DIR: KEK file ")

    def test_secrets_dir_inside_data_dir_stops_start(self, settings, tmp_path):
        use_dirs(settings, tmp_path, secrets="data/keys")
        errors = check_file_kek()
        assert [e.id for e in errors] == ["enclave.E601"]
        assert "inside the data directory" in errors[0].msg

    def test_live_environment_without_a_kek_stops_start(self, settings, tmp_path):
        use_dirs(settings, tmp_path)
        settings.CONFIG = dataclasses.replace(settings.CONFIG, env="production")
        errors = check_file_kek()
        assert [e.id for e in errors] == ["enclave.E601"]
        assert "enclave keys rotate-kek" in errors[0].msg

    def test_test_environment_passes(self):
        assert check_file_kek() == []
