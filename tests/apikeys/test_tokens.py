"""The token format: environment prefix, public id, secret, checksum; scope table."""

from __future__ import annotations

import pytest

from enclave.access.permissions import IMPLIED, Permission, close
from enclave.access.scopes import SCOPES
from enclave.apikeys import tokens
from enclave.logs.policy import DETECTORS


class TestFormat:
    @pytest.mark.parametrize(("env", "code"), [("production", "live"), ("staging", "stg"),
                                               ("test", "test"), ("dev", "dev")])
    def test_prefix_names_the_environment(self, env, code):
        token = tokens.make_token(env, tokens.new_public_id())
        assert token.startswith(f"enc_{code}_")
        assert tokens.parse(token).environment == env

    def test_parse_returns_the_public_id(self):
        public_id = tokens.new_public_id()
        assert tokens.parse(tokens.make_token("test", public_id)).public_id == public_id

    def test_every_single_character_change_is_caught(self):
        token = tokens.make_token("test", tokens.new_public_id())
        start = len("enc_test_")
        for i in range(start, len(token)):
            if token[i] == "_":
                continue
            changed = token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1:]
            with pytest.raises(tokens.TokenFormatError):
                tokens.parse(changed)

    @pytest.mark.parametrize("text", ["", "enc_test_", "enc_prod_AAAAAAAAAAAA_" + "A" * 38,
                                      "x" * 500, "Bearer enc_test_abc"])
    def test_malformed_texts_are_refused(self, text):
        with pytest.raises(tokens.TokenFormatError) as exc:
            tokens.parse(text)
        assert exc.value.reason == "malformed"

    def test_tokens_are_unique(self):
        assert len({tokens.make_token("test", "A" * 12) for _ in range(200)}) == 200

    def test_log_redaction_recognises_every_environments_keys(self):
        detector = DETECTORS["enclave_api_key"]
        for env in tokens.ENV_CODES:
            token = tokens.make_token(env, tokens.new_public_id())
            assert detector.pattern.search(f"key={token} ok").group(0) == token

    def test_find_tokens_spots_keys_in_header_values(self):
        token = tokens.make_token("test", tokens.new_public_id())
        assert tokens.find_tokens(f"Bearer {token}") == [token]
        assert tokens.find_tokens("Bearer enc_test_garbage") == []


# Write-only scopes: ingest writes people it cannot read; messages:send sends mail with
# templates it cannot read (EMAIL_MANAGE without EMAIL_READ).
WRITE_ONLY = frozenset({"events:write", "messages:send"})


class TestScopeTable:
    def test_scopes_name_only_permission_members(self):
        assert all(isinstance(p, Permission) for perms in SCOPES.values() for p in perms)

    def test_scope_permissions_are_closed_under_implication_except_write_only(self):
        assert all(close(perms) == perms for scope, perms in SCOPES.items()
                   if scope not in WRITE_ONLY)
        assert IMPLIED  # the closure above is not vacuous

    def test_the_ingest_scope_writes_people_without_reading_them(self):
        assert SCOPES["events:write"] == {Permission.EVENTS_WRITE, Permission.PEOPLE_WRITE}

    def test_contract_scopes_exist(self):
        assert {"people:read", "people:write", "people:export", "people:erase",
                "events:write", "audit:read", "account:read", "team:read",
                "api_keys:read"} <= set(SCOPES)
