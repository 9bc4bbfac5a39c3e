"""Identity configuration: email backend and SMTP settings."""

from __future__ import annotations

import pytest

from enclave.config import ConfigError, load


def cfg(tmp_path, **env):
    return load({"ENCLAVE_VAR_DIR": str(tmp_path), **env})


class TestEmailConfig:
    def test_embedded_default_writes_mail_files(self, tmp_path):
        assert cfg(tmp_path).email_backend == "file"

    def test_smtp_with_host_loads(self, tmp_path):
        loaded = cfg(tmp_path, ENCLAVE_EMAIL_BACKEND="smtp", ENCLAVE_EMAIL_HOST="mail.example")
        assert (loaded.email_host, loaded.email_port, loaded.email_use_tls) == (
            "mail.example", 587, True)

    def test_smtp_without_host_is_refused(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_EMAIL_HOST: the smtp email backend"):
            cfg(tmp_path, ENCLAVE_EMAIL_BACKEND="smtp")

    def test_unknown_backend_is_refused(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_EMAIL_BACKEND: must be one of"):
            cfg(tmp_path, ENCLAVE_EMAIL_BACKEND="carrier-pigeon")
