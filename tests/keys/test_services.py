"""KEK providers: file (with its location and permission rules), AWS KMS on moto, memory."""

import os
import shutil
import stat
import subprocess

import pytest

from enclave import config
from enclave.keys import services
from enclave.keys.errors import KekConfigError, KekError, MissingKek, WrongKek

CONTEXT = {"enclave_env": "test", "purpose": "fields", "version": "1"}
DATA_KEY = b"d" * 32


def file_provider(tmp_path, *, create=True, secrets="secrets", data="data"):
    return services.FileKekProvider(tmp_path / secrets, data_dir=tmp_path / data,
                                    create=create, env="test" if create else "production")


class TestFileKek:
    def test_first_use_creates_a_private_kek_file(self, tmp_path):
        provider = file_provider(tmp_path)
        kek_id, wrapped = provider.wrap(DATA_KEY, context=CONTEXT)
        path = tmp_path / "secrets" / "kek-1.key"
        assert kek_id == "file:1"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert provider.unwrap(kek_id, wrapped, context=CONTEXT) == DATA_KEY

    def test_new_kek_becomes_current_and_old_one_still_unwraps(self, tmp_path):
        provider = file_provider(tmp_path)
        old_id, wrapped = provider.wrap(DATA_KEY, context=CONTEXT)
        assert provider.new_kek() == "file:2"
        assert provider.current_kek_id() == "file:2"
        assert provider.unwrap(old_id, wrapped, context=CONTEXT) == DATA_KEY

    def test_wrapped_key_does_not_unwrap_in_another_context(self, tmp_path):
        provider = file_provider(tmp_path)
        kek_id, wrapped = provider.wrap(DATA_KEY, context=CONTEXT)
        with pytest.raises(WrongKek):
            provider.unwrap(kek_id, wrapped, context={**CONTEXT, "purpose": "logs"})

    def test_live_environment_never_creates_a_kek(self, tmp_path):
        provider = file_provider(tmp_path, create=False)
        with pytest.raises(KekConfigError, match=r"^ENCLAVE_SECRETS_DIR: no KEK file"):
            provider.wrap(DATA_KEY, context=CONTEXT)
        assert not (tmp_path / "secrets").exists()

    def test_kek_inside_the_data_directory_is_refused(self, tmp_path):
        provider = file_provider(tmp_path, secrets="data/keys")
        with pytest.raises(KekConfigError,
                           match=r"^ENCLAVE_SECRETS_DIR: KEK file .* inside the data directory"):
            provider.wrap(DATA_KEY, context=CONTEXT)
        assert not (tmp_path / "data" / "keys" / "kek-1.key").exists()

    def test_kek_readable_by_others_is_refused(self, tmp_path):
        provider = file_provider(tmp_path)
        provider.wrap(DATA_KEY, context=CONTEXT)
        (tmp_path / "secrets" / "kek-1.key").chmod(0o644)
        with pytest.raises(KekConfigError, match=r"mode 0644: it is open to group or others"):
            provider.wrap(DATA_KEY, context=CONTEXT)

    def test_malformed_kek_file_is_named(self, tmp_path):
        provider = file_provider(tmp_path)
        provider.wrap(DATA_KEY, context=CONTEXT)
        (tmp_path / "secrets" / "kek-1.key").write_text("not base64!\n")
        with pytest.raises(KekError, match=r"kek-1.key is malformed"):
            provider.wrap(DATA_KEY, context=CONTEXT)

    def test_kek_id_of_another_provider_is_explained(self, tmp_path):
        provider = file_provider(tmp_path)
        with pytest.raises(MissingKek, match=r"ENCLAVE_KEK_PROVIDER"):
            provider.unwrap("aws-kms:arn:aws:kms:x", b"", context=CONTEXT)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
class TestFileKekInGitWorkTree:
    @pytest.fixture
    def repo(self, tmp_path):
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
        return tmp_path

    def test_kek_in_an_unignored_work_tree_is_refused(self, repo):
        provider = file_provider(repo)
        with pytest.raises(KekConfigError, match=r"inside the git work tree .* not git-ignored"):
            provider.wrap(DATA_KEY, context=CONTEXT)

    def test_kek_in_an_ignored_directory_of_a_work_tree_is_accepted(self, repo):
        (repo / ".gitignore").write_text("/secrets/\n")
        provider = file_provider(repo)
        assert provider.wrap(DATA_KEY, context=CONTEXT)[0] == "file:1"


class TestMemoryKek:
    def test_round_trip_and_isolation_between_instances(self):
        one, two = services.MemoryKekProvider(), services.MemoryKekProvider()
        kek_id, wrapped = one.wrap(DATA_KEY, context=CONTEXT)
        assert one.unwrap(kek_id, wrapped, context=CONTEXT) == DATA_KEY
        with pytest.raises(MissingKek):
            two.unwrap(kek_id, wrapped, context=CONTEXT)


class TestAwsKmsKek:
    def test_round_trip_through_kms(self, kms_key, moto_url):
        provider = services.AwsKmsKekProvider(kms_key, region="us-east-1",
                                              endpoint_url=moto_url)
        kek_id, wrapped = provider.wrap(DATA_KEY, context=CONTEXT)
        assert kek_id.startswith("aws-kms:arn:aws:kms:us-east-1:")
        assert DATA_KEY not in wrapped
        assert provider.unwrap(kek_id, wrapped, context=CONTEXT) == DATA_KEY

    def test_other_encryption_context_is_refused_by_kms(self, kms_key, moto_url):
        provider = services.AwsKmsKekProvider(kms_key, region="us-east-1",
                                              endpoint_url=moto_url)
        kek_id, wrapped = provider.wrap(DATA_KEY, context=CONTEXT)
        with pytest.raises(WrongKek, match=r"AWS KMS refused to unwrap"):
            provider.unwrap(kek_id, wrapped, context={**CONTEXT, "enclave_env": "production"})

    def test_unknown_kms_key_is_reported(self, kms_key, moto_url):
        provider = services.AwsKmsKekProvider("alias/does-not-exist", region="us-east-1",
                                              endpoint_url=moto_url)
        with pytest.raises(KekError, match=r"AWS KMS"):
            provider.wrap(DATA_KEY, context=CONTEXT)

    def test_configuration_selects_kms(self, kms_key, moto_url):
        cfg = config.load({"ENCLAVE_KEK_PROVIDER": "aws-kms", "ENCLAVE_KMS_KEY_ID": kms_key,
                           "ENCLAVE_AWS_ENDPOINT_URL": moto_url,
                           "ENCLAVE_AWS_REGION": "us-east-1",
                           "ENCLAVE_VAR_DIR": os.environ["ENCLAVE_VAR_DIR"]})
        provider = services.provider_from_config(cfg)
        assert provider.name == "aws-kms"
        kek_id, wrapped = provider.wrap(DATA_KEY, context=CONTEXT)
        assert provider.unwrap(kek_id, wrapped, context=CONTEXT) == DATA_KEY


class TestKeyringConfig:
    def test_kms_without_key_id_names_the_setting(self):
        with pytest.raises(config.ConfigError, match=r"^ENCLAVE_KMS_KEY_ID:"):
            config.load({"ENCLAVE_KEK_PROVIDER": "aws-kms"})

    def test_unknown_provider_names_the_setting(self):
        with pytest.raises(config.ConfigError, match=r"^ENCLAVE_KEK_PROVIDER:"):
            config.load({"ENCLAVE_KEK_PROVIDER": "vault"})

    def test_max_age_is_bounded(self):
        with pytest.raises(config.ConfigError, match=r"^ENCLAVE_KEY_MAX_AGE_DAYS:"):
            config.load({"ENCLAVE_KEY_MAX_AGE_DAYS": "0"})

    def test_defaults_are_file_provider_and_ninety_days(self):
        cfg = config.load({})
        assert (cfg.kek_provider, cfg.key_max_age_days) == ("file", 90)


@pytest.mark.django_db
class TestKeyringOnKms:
    def test_values_round_trip_with_data_keys_wrapped_by_kms(self, kms_key, moto_url):
        from enclave.keys import api, keyring
        from enclave.keys.actions import do_rotate_kek
        from enclave.keys.models import DataKey

        provider = services.AwsKmsKekProvider(kms_key, region="us-east-1",
                                              endpoint_url=moto_url)
        with services.use_provider(provider):
            DataKey.objects.all().delete()
            keyring.clear_cache()
            try:
                ciphertext = api.encrypt("backups", b"archive key", aad=b"backup:7")
                do_rotate_kek(actor=None)
                keyring.clear_cache()
                assert api.decrypt("backups", ciphertext, aad=b"backup:7") == b"archive key"
                kek_id = DataKey.objects.get(purpose="backups").kek_id
                assert kek_id.startswith("aws-kms:arn:aws:kms:us-east-1:")
            finally:
                keyring.clear_cache()
