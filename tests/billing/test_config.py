"""Billing configuration: off by default; Stripe's secrets only from files; production
and test environments refuse each other's Stripe keys."""

from __future__ import annotations

import pytest

from enclave.config import ConfigError, load


@pytest.fixture
def base_env(tmp_path) -> dict:
    return {"ENCLAVE_VAR_DIR": str(tmp_path / "var"), "ENCLAVE_ENV": "test"}


@pytest.fixture
def stripe_env(base_env, tmp_path) -> dict:
    (tmp_path / "key").write_text("sk_test_abc123")
    (tmp_path / "whsec").write_text("whsec_abc123")
    return {**base_env, "ENCLAVE_BILLING": "stripe",
            "ENCLAVE_STRIPE_SECRET_KEY_FILE": str(tmp_path / "key"),
            "ENCLAVE_STRIPE_WEBHOOK_SECRET_FILE": str(tmp_path / "whsec")}


def test_billing_is_off_by_default(base_env):
    cfg = load(base_env)
    assert (cfg.billing, cfg.stripe_secret_key_file) == ("off", None)


def test_stripe_billing_reads_its_secrets_from_files(stripe_env, tmp_path):
    cfg = load(stripe_env)
    assert (cfg.billing, cfg.stripe_secret_key_file) == ("stripe", tmp_path / "key")
    assert "sk_test_abc123" not in repr(cfg)


def test_unknown_billing_mode_is_refused(base_env):
    with pytest.raises(ConfigError, match="ENCLAVE_BILLING"):
        load({**base_env, "ENCLAVE_BILLING": "paypal"})


def test_stripe_billing_without_a_key_file_is_refused(stripe_env):
    del stripe_env["ENCLAVE_STRIPE_SECRET_KEY_FILE"]
    with pytest.raises(ConfigError, match="needs the secret key in a file"):
        load(stripe_env)


def test_stripe_billing_without_a_webhook_secret_is_refused(stripe_env):
    del stripe_env["ENCLAVE_STRIPE_WEBHOOK_SECRET_FILE"]
    with pytest.raises(ConfigError, match="webhook signing secret"):
        load(stripe_env)


def test_file_that_is_not_a_stripe_key_is_refused(stripe_env, tmp_path):
    (tmp_path / "key").write_text("pk_test_publishable")
    with pytest.raises(ConfigError, match="does not hold a Stripe secret"):
        load(stripe_env)


def test_test_environment_refuses_a_live_stripe_key(stripe_env, tmp_path):
    (tmp_path / "key").write_text("sk_live_abc123")
    with pytest.raises(ConfigError, match="test environment refuses a Stripe live-mode key"):
        load(stripe_env)


def test_production_refuses_a_test_stripe_key(stripe_env):
    from enclave.config import _billing_settings

    with pytest.raises(ConfigError, match="production refuses a Stripe test-mode key"):
        _billing_settings(stripe_env, "production")


def test_api_base_over_plain_http_to_another_host_is_refused(stripe_env):
    with pytest.raises(ConfigError, match="ENCLAVE_STRIPE_API_BASE"):
        load({**stripe_env, "ENCLAVE_STRIPE_API_BASE": "http://stripe.example"})
