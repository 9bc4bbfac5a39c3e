"""``enclave apikeys create/list/revoke``: token printed once, clear errors, exit 2."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from enclave import cli
from enclave.apikeys.auth import authenticate_token
from enclave.apikeys.models import ApiKey
from enclave.apikeys.tokens import TOKEN_RE
from tests.backups.deployment import ENCLAVE, migrated_deployment


def create_args(world, **over) -> list[str]:
    args = {"--account": str(world.account.pk), "--member": "owner@acme.example",
            "--scopes": "people:read,events:write", "--role-ceiling": "user",
            "--name": "warehouse", **over}
    return ["apikeys", "create", *[x for pair in args.items() for x in pair]]


@pytest.mark.django_db
class TestCreate:
    def test_prints_a_working_token_once_on_stdout(self, world, capsys):
        assert cli.main(create_args(world, **{"--expires-days": "7"})) == 0
        out, err = capsys.readouterr()
        token = out.strip()
        assert TOKEN_RE.match(token)
        principal = authenticate_token(token, None)
        assert principal.scopes == {"people:read", "events:write"}
        assert token not in err
        assert principal.api_key_public_id in err

    @pytest.mark.parametrize(("over", "message"), [
        ({"--account": "999999"}, "no account"),
        ({"--account": "abc"}, "no account"),
        ({"--member": "nobody@acme.example"}, "no member"),
        ({"--member": "user@acme.example"}, "may not create keys"),
        ({"--scopes": "people:read,bogus"}, "Unknown scope"),
        ({"--role-ceiling": "emperor"}, "role_ceiling"),
        ({"--expires-days": "400"}, "expires_days"),
    ])
    def test_bad_input_is_one_line_and_exit_2(self, world, capsys, over, message):
        assert cli.main(create_args(world, **over)) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert message in err
        assert len(err.strip().splitlines()) == 1
        assert not ApiKey.objects.exists()


@pytest.mark.django_db
class TestListAndRevoke:
    def test_list_shows_public_ids_never_tokens(self, world, capsys):
        cli.main(create_args(world))
        token = capsys.readouterr().out.strip()
        assert cli.main(["apikeys", "list", "--account", str(world.account.pk)]) == 0
        out = capsys.readouterr().out
        assert token.split("_")[2] in out
        assert token not in out

    def test_revoke_revokes(self, world, capsys):
        cli.main(create_args(world))
        public_id = capsys.readouterr().out.strip().split("_")[2]
        assert cli.main(["apikeys", "revoke", public_id, "--member", "admin@acme.example"]) == 0
        assert ApiKey.objects.get(public_id=public_id).state() == "revoked"

    def test_revoke_of_an_unknown_key_is_exit_2(self, world, capsys):
        assert cli.main(["apikeys", "revoke", "AAAAAAAAAAAA", "--member",
                         "owner@acme.example"]) == 2
        assert "no key" in capsys.readouterr().err


def test_create_works_against_a_deployments_own_database(tmp_path):
    """The real command in a subprocess, on a migrated deployment (as the live tests do)."""
    var = tmp_path / "var"
    env = migrated_deployment(var, "ops@example.com", "Ops")
    db = sqlite3.connect(var / "data" / "enclave.sqlite3")
    db.execute("INSERT INTO accounts_account (name, created_at, idle_timeout_minutes, "
               "require_mfa) VALUES ('Live', '2026-01-01', 30, 0)")
    db.execute("INSERT INTO accounts_membership (member_id, account_id, role, created_at) "
               "SELECT m.id, a.id, 'owner', '2026-01-01' FROM identity_member m, "
               "accounts_account a")
    db.commit()
    account_id = db.execute("SELECT id FROM accounts_account").fetchone()[0]
    db.close()
    result = subprocess.run(
        [*ENCLAVE, "apikeys", "create", "--account", str(account_id), "--member",
         "ops@example.com", "--scopes", "people:read", "--name", "schemathesis"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert TOKEN_RE.match(token)
    assert token.startswith("enc_test_")
    listed = subprocess.run([*ENCLAVE, "apikeys", "list", "--account", str(account_id)],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert token.split("_")[2] in listed.stdout
