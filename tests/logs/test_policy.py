"""Redaction policy tests, generated from the policy data: every detector has positive
and negative examples, every key rule term is exercised, and bad policies fail closed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from urllib.parse import quote

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
    "iban": ([(f"to {IBAN}", IBAN), ("iban DE89 3704 0044 0532 0130 00", "0532 0130"),
              # Its digits pass Luhn too: the whole IBAN goes, not a card inside it.
              ("to DE55 1000 0000 0000 0000 08", "DE55 1000")],
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
        if name == "email":  # strict pseudonymises emails with a keyed hash
            assert re.fullmatch(r"from email:[0-9a-f]{10}", out)
        elif name == "key_value":  # the value is marked with its key's rule
            key_rules = {r["name"] for r in policy.RULES if r["type"] == "key"}
            assert set(re.findall(r"\[REDACTED:(\w+)\]", out)) & key_rules, out
        else:
            assert f"[REDACTED:{name}]" in out

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
        out = policy.load().redact_text(text)
        assert "[REDACTED:" in out
        assert text.split("=")[-1].split(": ")[-1] not in out


def deep_list(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


class TestDeepValues:
    """Values too deep to print (a request body that reached a log call) are replaced,
    never a RecursionError inside the logger."""

    def test_deep_value_under_a_sensitive_key_is_redacted_whole(self):
        assert strict().redact({"password": deep_list(100_000)}) == strict().redact(
            {"password": "hunter2"})

    def test_object_too_deep_to_print_is_replaced(self):
        import collections

        value: collections.deque = collections.deque()
        for _ in range(100_000):
            value = collections.deque([value])
        assert strict().redact({"note": value}) == {"note": policy.DEPTH_PLACEHOLDER}

    def test_deep_container_is_cut_at_the_depth_limit(self):
        redacted = strict().redact({"note": deep_list(100_000)})
        for _ in range(policy.MAX_DEPTH):
            redacted = redacted["note"] if isinstance(redacted, dict) else redacted[0]
        assert redacted == [policy.DEPTH_PLACEHOLDER]


def token() -> str:
    return planted.enclave_key()[9:]  # 32 random URL-safe characters, like a real token


def example_path(pattern: str, secret: str) -> str:
    return pattern.replace(policy.PATH_TOKEN, secret).replace(policy.PATH_ANY, "x")


PATH_PATTERNS = [p for r in policy.RULES if r["type"] == "path" for p in r["patterns"]]
# How a path reaches a log line: Django's "Not Found", gunicorn's request line, a URL in a
# message, a next= value (decoded, percent-encoded, encoded twice), JSON-escaped.
PATH_FORMS = [
    "Not Found: {path}", 'GET {path} HTTP/1.1" 404', "see https://enclave.example.com{path}",
    "/app/login/?next={path}", "/app/login/?next={encoded}&page=2",
    "/app/login/?next=%2Fapp%2Fx%3Fnext%3D{twice}", '{{"path": "{escaped}"}}',
]


class TestPathRules:
    @pytest.mark.parametrize("form", PATH_FORMS)
    @pytest.mark.parametrize("pattern", PATH_PATTERNS)
    def test_token_segment_is_redacted_at_the_standard_level(self, pattern, form):
        secret = token()
        path = example_path(pattern, secret)
        text = form.format(path=path, encoded=quote(path, safe=""),
                           twice=quote(quote(path, safe=""), safe=""),
                           escaped=path.replace("/", "\\/"))
        out = policy.load().redact_text(text)
        assert secret not in out
        assert "[REDACTED:one_time_token]" in out

    def test_segments_after_the_token_and_the_query_are_kept(self):
        out = policy.load().redact_text("/app/invite/abcDEF123/extra?page=2")
        assert out == "/app/invite/[REDACTED:one_time_token]/extra?page=2"

    @pytest.mark.parametrize("text", ["/app/signup/", "/app/password/reset/",
                                      "/app/account/invite/", "/app/inviteX/abc",
                                      "/myapp/invite/abc", "the invite was sent"])
    def test_paths_without_a_token_segment_are_left_alone(self, text):
        assert policy.load().redact_text(text) == text

    def test_redacting_twice_changes_nothing(self):
        pol = policy.load()
        once = pol.redact_text(f"/app/setup/{token()}?next=/app/invite/{token()}")
        assert pol.redact_text(once) == once

    def test_hash_action_gives_a_keyed_pseudonym(self):
        rule = {"type": "path", "name": "link", "action": "hash", "patterns": ["/u/<token>"]}
        pol = policy.build([[rule, {"type": "detector", "name": "key_value",
                                    "action": "replace"}]], hasher=lambda v: "ab" * 32)
        assert pol.redact_text("/u/secret123/prefs") == "/u/link:ababababab/prefs"

    def test_a_later_level_adds_patterns_and_keeps_the_old_ones(self):
        extra = [{"type": "path", "name": "one_time_token", "action": "remove",
                  "patterns": ["/p/<any>/unsubscribe/<token>"]}]
        pol = policy.build([policy.RULES, extra])
        assert pol.redact_text("/p/acme/unsubscribe/s3cret") == "/p/acme/unsubscribe/"
        assert pol.redact_text("/app/invite/s3cret") == "/app/invite/"


class TestQueryRules:
    @pytest.mark.parametrize("key", ["q", "search", "email", "first_name", "last_name",
                                     "phone", "address", "ip", "custom.birthday", "username"])
    def test_personal_value_is_redacted_by_its_key(self, key):
        out = policy.load().redact_text(f"/app/people/?{key}=Alice&page=2")
        assert out == f"/app/people/?{key}=[REDACTED:personal_data]&page=2"

    @pytest.mark.parametrize("value", ["alice@example.com", "alice%40example.com"])
    def test_email_under_any_key_is_redacted(self, value):
        out = policy.load().redact_text(f"/app/x/?ref={value}&page=2")
        assert out == "/app/x/?ref=[REDACTED:personal_data]&page=2"

    def test_search_term_in_an_encoded_next_is_redacted(self):
        text = "/app/login/?next=%2Fapp%2Fpeople%2F%3Fsort%3Dname%26q%3Dalice&page=2"
        assert policy.load().redact_text(text) == (
            "/app/login/?next=%2Fapp%2Fpeople%2F%3Fsort%3Dname%26q%3D"
            "[REDACTED:personal_data]&page=2")

    def test_search_term_in_a_next_inside_a_next_is_redacted(self):
        inner = quote("/app/people/?q=alice", safe="")
        text = "/app/login/?next=" + quote(f"/app/reauth/?next={inner}", safe="")
        assert "alice" not in policy.load().redact_text(text)

    def test_search_term_in_a_decoded_next_is_redacted(self):
        assert policy.load().redact_text("next=/app/people/?q=alice") == (
            "next=/app/people/?q=[REDACTED:personal_data]")

    @pytest.mark.parametrize("text", ["/app/people/?page=2&sort=name&archived=1",
                                      "https://hooks.example.com/x?id=3", "a=b? no"])
    def test_ordinary_parameters_are_left_alone(self, text):
        assert policy.load().redact_text(text) == text

    def test_query_string_of_the_access_log_is_redacted_parameter_by_parameter(self):
        secret = token()
        out = policy.load().redact_query(
            f"q=alice&next=/app/invite/{secret}&api_key=k3y&page=2&bob%40example.com=1")
        assert out == ("q=[REDACTED:personal_data]&next=/app/invite/"
                       "[REDACTED:one_time_token]&api_key=[REDACTED:token]&page=2"
                       "&[REDACTED:personal_data]=1")

    def test_every_personal_people_field_is_a_personal_query_key(self):
        from enclave.people.visibility import FIELD_CLASSES

        pol = policy.load()
        personal = [f for f, cls in FIELD_CLASSES.items() if cls != "none"]
        assert personal
        assert [f for f in personal if pol.query_action(f, "x") is None] == []

    def test_email_detector_catches_addresses_anywhere_at_the_strict_level(self):
        out = strict().redact_text("mailto alice@example.com /p/alice@example.com/ "
                                   "?x=1&ref=alice@example.com")
        assert "alice@example.com" not in out
        assert out.count("email:") == 2
        assert out.endswith("?x=1&ref=[REDACTED:personal_data]")


class TestBadPathAndQueryRules:
    @pytest.mark.parametrize(("rule", "message"), [
        ({"type": "path", "name": "x", "action": "replace", "patterns": ["/app/x"]},
         "no <token> segment"),
        ({"type": "path", "name": "x", "action": "replace", "patterns": ["app/<token>"]},
         "must be a string starting with '/'"),
        ({"type": "path", "name": "x", "action": "replace", "patterns": ["/a.*/<token>"]},
         "is not a literal"),
        ({"type": "path", "name": "x", "action": "replace", "patterns": ["/a/<token>/"]},
         "is not a literal"),
        ({"type": "path", "name": "x", "action": "replace", "patterns": []}, "patterns"),
        ({"type": "path", "name": "x", "action": "replace"}, "patterns"),
        ({"type": "query", "name": "x", "action": "replace", "terms": ["q"],
          "detectors": ["tarot"]}, "'detectors' must be a list of detector names"),
        ({"type": "query", "name": "x", "action": "replace", "terms": []}, "terms"),
        ({"type": "path", "name": "one_time_token", "action": "mask",
          "patterns": ["/x/<token>"]}, "loosen"),
    ])
    def test_bad_rule_raises_policy_error(self, rule, message):
        with pytest.raises(policy.PolicyError, match=re.escape(message)):
            policy.build([policy.RULES, [rule]])


def _routes(patterns, prefix: str = ""):
    """(route, URLPattern) for every route of the URL configuration, with its full route."""
    from django.urls import URLResolver

    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        else:
            yield route, entry


def _sample(converter) -> str:
    for value in ("7", "x", "0b7e3c1e-6f2a-4d5b-9c1d-2e3f4a5b6c7d"):
        if re.fullmatch(converter.regex, value):
            return value
    raise AssertionError(f"no sample value for {converter!r}")


class TestRouteCoverage:
    def test_every_route_parameter_that_is_a_secret_is_redacted_in_its_path(self):
        """Generated from the URL resolver: a new route taking ``<str:token>`` (or any
        parameter the key rules call sensitive) fails here until a path pattern covers it."""
        from django.urls import get_resolver

        pol = policy.load()
        secret_routes, leaks = set(), []
        for route, entry in _routes(get_resolver().url_patterns):
            converters = entry.pattern.converters
            # Digits-only converters are row ids (<int:session_id>), never a secret.
            secrets_here = [name for name, conv in converters.items()
                            if pol.key_action(name) and re.fullmatch(conv.regex, "abc")]
            if not secrets_here:
                continue
            secret_routes.add(entry.name)
            values = {name: token() if name in secrets_here else _sample(conv)
                      for name, conv in converters.items()}
            path = "/" + re.sub(r"<(?:[^>:]+:)?(\w+)>",
                                lambda m, values=values: values[m.group(1)], route)
            out = pol.redact_text(path)
            leaks += [f"{route}: {name}" for name in secrets_here if values[name] in out]
        assert {"setup-owner", "signup-complete", "accept-invitation",
                "password-reset-confirm"} <= secret_routes
        assert leaks == []


class TestCardDetectorIgnoresIdentifiers:
    @pytest.mark.parametrize("text", [
        "task 9a1b2c3d-4111-1111-1111-111111111111 succeeded",
        "id=c0ffee00-4111-1111-1111-111111111111",
        "trace 41111111111111111a",
    ])
    def test_digit_runs_inside_identifiers_are_kept(self, text):
        assert policy.load().redact_text(text) == text

    def test_a_card_number_on_its_own_is_still_redacted(self):
        assert "4111" not in policy.load().redact_text("paid with 4111 1111 1111 1111 today")
