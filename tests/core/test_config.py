"""Typed configuration: defaults, validation, and refusals in live environments."""

import dataclasses

import pytest

from enclave import config
from enclave.config import ConfigError


def load(tmp_path, **env):
    base = {"ENCLAVE_VAR_DIR": str(tmp_path / "var")}
    base.update(env)
    return config.load(base)


class TestDefaults:
    def test_embedded_default_serves_localhost_8443_from_sqlite(self, tmp_path):
        cfg = load(tmp_path)
        assert cfg.public_url == "https://localhost:8443"
        assert cfg.http_port == 8080
        assert cfg.is_sqlite
        assert cfg.env == "dev"

    def test_secrets_dir_is_beside_not_inside_data_dir(self, tmp_path):
        cfg = load(tmp_path)
        assert not cfg.secrets_dir.is_relative_to(cfg.data_dir)


class TestValidation:
    @pytest.mark.parametrize(("name", "value", "message"), [
        ("ENCLAVE_ENV", "prod", "must be one of"),
        ("ENCLAVE_HTTPS_PORT", "abc", "expected an integer"),
        ("ENCLAVE_HTTPS_PORT", "70000", "between 1 and 65535"),
        ("ENCLAVE_DEBUG", "maybe", "expected true/false"),
        ("ENCLAVE_PUBLIC_URL", "http://example.com", "https:// origin"),
        ("ENCLAVE_ALLOWED_HOSTS", "*", "wildcard"),
        ("ENCLAVE_DATABASE_URL", "mysql://x/y", "sqlite:// or postgres://"),
        ("ENCLAVE_SECURITY_CONTACT", "security@example.com", "mailto:"),
    ])
    def test_bad_value_names_the_setting(self, tmp_path, name, value, message):
        with pytest.raises(ConfigError) as err:
            load(tmp_path, **{name: value})
        assert str(err.value).startswith(f"{name}: ")
        assert message in str(err.value)

    def test_secrets_dir_inside_data_dir_is_refused(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_SECRETS_DIR"):
            load(tmp_path, ENCLAVE_DATA_DIR=str(tmp_path / "d"),
                 ENCLAVE_SECRETS_DIR=str(tmp_path / "d" / "s"))

    def test_same_http_and_https_port_is_refused(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_HTTP_PORT"):
            load(tmp_path, ENCLAVE_HTTPS_PORT="9000", ENCLAVE_HTTP_PORT="9000")


class TestLiveEnvironments:
    def prod(self, tmp_path, **env):
        base = {"ENCLAVE_ENV": "production", "ENCLAVE_DATABASE_URL": "postgres://db/enclave",
                "ENCLAVE_BEHIND_PROXY": "1", "ENCLAVE_PUBLIC_URL": "https://mail.example.com"}
        base.update(env)
        return load(tmp_path, **base)

    def test_correct_production_configuration_loads(self, tmp_path):
        assert self.prod(tmp_path).is_live

    def test_production_refuses_debug(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_DEBUG"):
            self.prod(tmp_path, ENCLAVE_DEBUG="1")

    def test_production_refuses_sqlite_unless_allowed(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_DATABASE_URL"):
            self.prod(tmp_path, ENCLAVE_DATABASE_URL="sqlite:////tmp/x.sqlite3")
        assert self.prod(tmp_path, ENCLAVE_DATABASE_URL="sqlite:////tmp/x.sqlite3",
                         ENCLAVE_ALLOW_SQLITE="1").is_sqlite

    def test_production_without_proxy_refuses_missing_tls_files(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_TLS_CERT"):
            self.prod(tmp_path, ENCLAVE_BEHIND_PROXY="0")


class TestSecretKey:
    def test_dev_generates_private_key_file_once(self, tmp_path):
        cfg = load(tmp_path)
        first = config.read_or_create_secret_key(cfg)
        assert config.read_or_create_secret_key(cfg) == first
        assert cfg.secret_key_file.stat().st_mode & 0o777 == 0o600
        assert cfg.secret_key_file.parent.stat().st_mode & 0o777 == 0o700

    def test_production_never_generates_a_key(self, tmp_path):
        cfg = dataclasses.replace(load(tmp_path), env="production")
        with pytest.raises(ConfigError, match="ENCLAVE_SECRET_KEY_FILE"):
            config.read_or_create_secret_key(cfg)
        assert not cfg.secret_key_file.exists()

    def test_weak_key_is_refused(self, tmp_path):
        cfg = load(tmp_path)
        cfg.secret_key_file.parent.mkdir(parents=True)
        cfg.secret_key_file.write_text("django-insecure-" + "x" * 60)
        with pytest.raises(ConfigError, match="weak or default"):
            config.read_or_create_secret_key(cfg)


class TestTrustedProxies:
    def test_default_trusts_only_loopback(self, tmp_path):
        assert load(tmp_path).trusted_proxies == ("127.0.0.1/32", "::1/128")

    def test_networks_are_parsed(self, tmp_path):
        cfg = load(tmp_path, ENCLAVE_TRUSTED_PROXIES="10.1.2.3, 10.0.0.0/8")
        assert cfg.trusted_proxies == ("10.1.2.3/32", "10.0.0.0/8")

    def test_malformed_entry_names_the_variable(self, tmp_path):
        with pytest.raises(ConfigError, match="ENCLAVE_TRUSTED_PROXIES"):
            load(tmp_path, ENCLAVE_TRUSTED_PROXIES="10.0.0.0/8,proxy.local")


class TestAdvisoryDb:
    def test_unset_means_the_online_audit(self, tmp_path):
        assert load(tmp_path).advisory_db is None

    def test_path_is_made_absolute(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        cfg = load(tmp_path, ENCLAVE_ADVISORY_DB="advisories")
        assert cfg.advisory_db == tmp_path.resolve() / "advisories"


class TestDnsServers:
    def test_unset_means_the_system_resolver(self, tmp_path):
        assert load(tmp_path).dns_servers == ()

    def test_addresses_with_and_without_ports(self, tmp_path):
        cfg = load(tmp_path, ENCLAVE_DNS_SERVERS="192.0.2.53, 127.0.0.1:5353,[::1]:53")
        assert cfg.dns_servers == (("192.0.2.53", 53), ("127.0.0.1", 5353), ("::1", 53))

    @pytest.mark.parametrize("bad", ["dns.example", "127.0.0.1:0", "127.0.0.1:99999",
                                     "127.0.0.1:x"])
    def test_anything_but_an_address_is_refused_by_name(self, tmp_path, bad):
        with pytest.raises(ConfigError, match="ENCLAVE_DNS_SERVERS"):
            load(tmp_path, ENCLAVE_DNS_SERVERS=bad)
