"""Redaction policy tests, generated from the policy data: every detector has positive
and negative examples, every key rule term is exercised, and bad policies fail closed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from enclave.config import ConfigError
from enclave.config import load as load_config
from enclave.logs import policy
from tests.logs import planted

CARD = planted.card_number()
IBAN = planted.iban()
KEY = planted.enclave_key()
JWT = planted.jwt()
PEM = planted.pem_private_key()

# detector → (texts it must redact: the secret part; texts it must leave alone)
DETECTOR_EXAMPLES: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "pem": ([(f"key:\n{PEM}", PEM.splitlines()[1]),
             ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabcdef", "MIIEabcdef")],
            ["-----BEGIN is how a PEM starts", "dashes ----- here"]),
    "jwt": ([(f"jwt {JWT}", JWT.split(".")[2])], ["eyJ alone", "a.b.c"]),
    "bearer": ([("Authorization was Bearer abcdEFGH1234xyz", "abcdEFGH1234xyz"),
                ("basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==")],
               ["the bearer of bad news", "token ring"]),
    "url_credentials": ([("https://ops:Sup3rPass@db.example.com/x", "Sup3rPass"),
                         ("redis://:r3dispass@cache:6379/0", "r3dispass")],
                        ["https://db.example.com:5432/x", "see https://example.com/@team"]),
    "enclave_api_key": ([(f"key {KEY}", KEY), (f"enc_live_{'A' * 24}", "A" * 24)],
                        ["enc_test_short", "enc_prod_" + "a" * 30]),
    "cloud_access_key": ([("id AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
                          ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A")],
                         ["AKIA is a prefix", "AKIAshort1"]),
    "card": ([(f"paid {CARD}", CARD),
              (f"paid {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}", CARD[8:12]),
              (f"paid {CARD[:4]}-{CARD[4:8]}-{CARD[8:12]}-{CARD[12:]}", CARD[12:])],
             ["order 1234567890123", "order 4111111111111112", "phone 555 1234"]),
    "iban": ([(f"to {IBAN}", IBAN), ("iban DE89 3704 0044 0532 0130 00", "0532 0130")],
             ["GB00WEST12345698765432", "DE00 3704 0044 0532 0130 00"]),
    "key_value": ([("password=hunter2", "hunter2"), ("{'otp': '123456'}", "123456"),
                   ('"client_secret": "abc def"', "abc def"),
                   ("aws_secret_access_key=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
                    "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"),
                   ("/login?next=/app&token=t0k3nvalue", "t0k3nvalue")],
                  ["status=500", "footprint: 12", "path: /app/login/"]),
    "email": ([("from jane.doe@example.com", "jane.doe@example.com")],
              ["@handle", "user at example.com"]),
}

KEY_VARIANTS = ["X-Api-Key", "HTTP_AUTHORIZATION", "new_password1", "csrfmiddlewaretoken",
                "Cookie", "sessionid", "aws_secret_access_key", "cardNumber", "recovery_code"]


def strict() -> policy.Policy:
    return policy.load("strict")


class TestDetectors:
    def test_every_detector_has_examples(self):
        assert set(DETECTOR_EXAMPLES) == set(policy.DETECTORS)

    @pytest.mark.parametrize(("name", "text", "secret"), [
        (name, text, secret) for name, (pos, _) in DETECTOR_EXAMPLES.items()
        for text, secret in pos])
    def test_positive_example_is_redacted(self, name, text, secret):
        out = strict().redact_text(text)
        assert secret not in out
        assert ("[REDACTED:" in out) or out.startswith("from email:")

    @pytest.mark.parametrize(("name", "text"), [
        (name, text) for name, (_, neg) in DETECTOR_EXAMPLES.items() for text in neg])
    def test_negative_example_is_left_alone(self, name, text):
        assert strict().redact_text(text) == text

    def test_api_key_format_is_documented(self):
        pattern = policy.DETECTORS["enclave_api_key"].pattern.pattern
        assert pattern == r"enc_(?:live|test|dev|stg)_[A-Za-z0-9_]{20,}"

    def test_email_pseudonym_is_keyed_and_stable(self):
        pol = policy.build([policy.RULES, policy.STRICT_RULES], hasher=lambda v: "ab" * 32)
        assert pol.redact_text("x bob@example.com") == "x email:ababababab"

    def test_emails_are_kept_at_the_standard_level(self):
        assert policy.load().redact_text("bob@example.com") == "bob@example.com"


class TestKeyRules:
    @pytest.mark.parametrize(("rule", "term"), [
        (r["name"], t) for r in policy.RULES if r["type"] == "key" for t in r["terms"]])
    def test_every_term_redacts_its_value_anywhere(self, rule, term):
        value = {"outer": [{"inner": {term: "s3cr3t-value"}}]}
        out = policy.load().redact(value)
        assert out == {"outer": [{"inner": {term: f"[REDACTED:{rule}]"}}]}

    @pytest.mark.parametrize("key", KEY_VARIANTS)
    def test_normalised_key_variants_are_sensitive(self, key):
        assert policy.load().key_action(key) is not None

    @pytest.mark.parametrize("key", ["footprint", "status", "path", "author", "trace_id",
                                     "carding_total_pages"])
    def test_ordinary_keys_are_not_sensitive(self, key):
        assert policy.load().key_action(key) is None


class TestActions:
    @pytest.mark.parametrize(("action", "expected"), [
        ("replace", {"password": "[REDACTED:password]"}),
        ("remove", {}),
        ("hash", {"password": "password:0123456789"}),
    ])
    def test_actions_change_the_value_as_declared(self, action, expected):
        rule = {"type": "key", "name": "password", "action": action, "terms": ["password"]}
        pol = policy.build([[rule, {"type": "detector", "name": "key_value",
                                    "action": "replace"}]], hasher=lambda v: "0123456789ab")
        assert pol.redact({"password": "hunter2"}) == expected

    def test_mask_keeps_only_the_last_four_characters(self):
        rule = {"type": "detector", "name": "card", "action": "mask"}
        pol = policy.build([[rule, {"type": "detector", "name": "key_value",
                                    "action": "replace"}]])
        assert pol.redact_text(f"c {CARD}") == f"c {'*' * 12}{CARD[-4:]}"


class TestFailClosed:
    @pytest.mark.parametrize(("rule", "message"), [
        ({"type": "regex", "name": "x", "action": "replace"}, "unknown rule type"),
        ({"type": "detector", "name": "card", "action": "obfuscate"}, "unknown action"),
        ({"type": "detector", "name": "tarot", "action": "replace"}, "unknown detector"),
        ({"type": "key", "name": "x", "action": "replace", "terms": ["a"], "when": 1},
         "unknown field"),
        ({"type": "key", "name": "x", "action": "replace", "terms": []}, "terms"),
        ({"type": "key", "name": "password", "action": "mask", "terms": ["pw"]}, "loosen"),
        ("card", "not a table"),
    ])
    def test_bad_rule_raises_policy_error(self, rule, message):
        with pytest.raises(policy.PolicyError, match=message):
            policy.build([policy.RULES, [rule]])

    def test_a_later_level_may_tighten(self):
        pol = policy.build([policy.RULES, [{"type": "detector", "name": "card",
                                            "action": "remove"}]])
        assert pol.redact_text(f"c {CARD}.") == "c ."

    def test_process_refuses_to_start_with_a_bad_policy_file(self, tmp_path):
        bad = tmp_path / "policy.json"
        bad.write_text(json.dumps([{"type": "detector", "name": "card", "action": "shrug"}]))
        env = {"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(tmp_path / "var"),
               "ENCLAVE_LOG_POLICY_FILE": str(bad), "PATH": "/usr/bin:/bin"}
        result = subprocess.run([sys.executable, "-m", "enclave", "logs", "verify"], env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "enclave: configuration error: ENCLAVE_LOG_POLICY: rule 'card': unknown action "
            "'shrug' (known: mask, hash, replace, remove)"]


class TestConfig:
    def test_retention_over_90_days_is_refused(self):
        with pytest.raises(ConfigError, match="ENCLAVE_LOG_RETENTION_DAYS"):
            load_config({"ENCLAVE_LOG_RETENTION_DAYS": "120"})

    def test_syslog_needs_host_and_port(self):
        with pytest.raises(ConfigError, match="ENCLAVE_LOG_SYSLOG"):
            load_config({"ENCLAVE_LOG_SYSLOG": "logs.example.com"})

    def test_retention_defaults_to_90_days(self):
        assert load_config({}).log_retention_days == 90


class TestKeyValuePrecheck:
    @pytest.mark.parametrize("text", ["pass_word=hunter2", "Api-Key: abc123", "x.SECRET9=abc",
                                      "HTTP_X_CSRFTOKEN=abc"])
    def test_keys_split_by_separators_or_digits_are_still_found(self, text):
        assert text.split("=")[-1].split(": ")[-1] not in policy.load().redact_text(text)
