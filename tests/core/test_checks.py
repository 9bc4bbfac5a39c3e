"""`enclave manage check --deploy --fail-level WARNING` passes for a correct production
configuration and fails for each insecure one, with a clear message."""

import base64
import os
import secrets
import subprocess
import sys

import pytest


def production_env(tmp_path, **overrides):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    key = secrets_dir / "django-secret-key"
    if not key.exists():
        key.write_text(secrets.token_urlsafe(64))
        key.chmod(0o600)
    kek = secrets_dir / "kek-1.key"  # the file KEK production needs (enclave.E601)
    if not kek.exists():
        kek.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        kek.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(
        ENCLAVE_ENV="production",
        ENCLAVE_VAR_DIR=str(tmp_path / "var"),
        ENCLAVE_SECRETS_DIR=str(secrets_dir),
        ENCLAVE_DATABASE_URL="postgres://postgres@127.0.0.1:5432/enclave_not_used",
        ENCLAVE_BEHIND_PROXY="1",
        ENCLAVE_PUBLIC_URL="https://marketing.example.com",
    )
    env.update(overrides)
    return env


def check_deploy(env):
    return subprocess.run(
        [sys.executable, "-m", "enclave", "manage", "check", "--deploy", "--fail-level",
         "WARNING"],
        env=env, capture_output=True, text=True, timeout=120,
    )


class TestDeployCheck:
    def test_correct_production_configuration_passes(self, tmp_path):
        result = check_deploy(production_env(tmp_path))
        assert result.returncode == 0, result.stderr

    def test_non_live_environment_fails_with_w102(self, tmp_path):
        result = check_deploy(production_env(tmp_path, ENCLAVE_ENV="dev"))
        assert result.returncode == 1
        assert "System check identified 1 issue" in result.stderr
        assert "enclave.W102" in result.stderr

    def test_group_readable_secrets_dir_fails_with_e104(self, tmp_path):
        env = production_env(tmp_path)
        (tmp_path / "secrets").chmod(0o750)
        result = check_deploy(env)
        assert result.returncode == 1
        assert "System check identified 1 issue" in result.stderr
        assert "enclave.E104" in result.stderr

    @pytest.mark.parametrize(("override", "setting"), [
        ({"ENCLAVE_DEBUG": "1"}, "ENCLAVE_DEBUG"),
        ({"ENCLAVE_DATABASE_URL": "sqlite:////tmp/enclave.sqlite3"}, "ENCLAVE_DATABASE_URL"),
        ({"ENCLAVE_BEHIND_PROXY": "0"}, "ENCLAVE_TLS_CERT"),
        ({"ENCLAVE_ALLOWED_HOSTS": "*"}, "ENCLAVE_ALLOWED_HOSTS"),
    ])
    def test_insecure_setting_stops_with_one_line_naming_it(self, tmp_path, override, setting):
        result = check_deploy(production_env(tmp_path, **override))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert setting in lines[0]
        assert "Traceback" not in result.stderr

    def test_missing_secret_key_in_production_stops_with_one_line(self, tmp_path):
        env = production_env(tmp_path)
        (tmp_path / "secrets" / "django-secret-key").unlink()
        result = check_deploy(env)
        assert result.returncode == 2
        assert "ENCLAVE_SECRET_KEY_FILE" in result.stderr
