"""Against a real ``enclave serve`` (gunicorn workers, own processes): a key made with the
CLI works, a revocation by another process takes effect on the next request, and a key
sent over plain HTTP is refused from then on."""

from __future__ import annotations

import json
import sqlite3
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from enclave.testing.live import run_enclave

EMAIL = "live-keys@apikeys.example"


def request(url: str, token: str, cafile=None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=15) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def enclave(live, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enclave", *args], env=live.env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def live_enclave(tmp_path_factory):
    """A deployment of its own: members written here would make the shared deployment's
    one-time owner set-up link (tests/website/test_browser.py) invalid."""
    with run_enclave(tmp_path_factory.mktemp("live-keys") / "var") as live:
        yield live


@pytest.fixture(scope="module")
def live_account(live_enclave) -> int:
    db = sqlite3.connect(live_enclave.var_dir / "data" / "enclave.sqlite3", timeout=30)
    with db:
        db.execute("INSERT INTO identity_member (email, name, is_active, created_at, password) "
                   "VALUES (?, 'Live keys', 1, '2026-01-01', '!')", (EMAIL,))
        db.execute("INSERT INTO accounts_account (name, created_at, idle_timeout_minutes, "
                   "require_mfa) VALUES ('Live keys', '2026-01-01', 30, 0)")
        account_id = db.execute("SELECT max(id) FROM accounts_account").fetchone()[0]
        member_id = db.execute("SELECT id FROM identity_member WHERE email = ?",
                               (EMAIL,)).fetchone()[0]
        db.execute("INSERT INTO accounts_membership (member_id, account_id, role, created_at) "
                   "VALUES (?, ?, 'owner', '2026-01-01')", (member_id, account_id))
    db.close()
    return account_id


def new_key(live, account_id: int) -> str:
    result = enclave(live, "apikeys", "create", "--account", str(account_id), "--member",
                     EMAIL, "--scopes", "api_keys:read", "--name", "live")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.slow
class TestLiveServer:
    def test_revocation_by_another_process_applies_to_the_next_request(
            self, live_enclave, live_account):
        token = new_key(live_enclave, live_account)
        url = f"{live_enclave.https_url}/api/v1/api-keys"
        statuses = [request(url, token, live_enclave.ca_file)[0] for _ in range(4)]
        assert statuses == [200] * 4
        revoked = enclave(live_enclave, "apikeys", "revoke", token.split("_")[2],
                          "--member", EMAIL)
        assert revoked.returncode == 0, revoked.stderr
        after = [request(url, token, live_enclave.ca_file) for _ in range(4)]
        assert {status for status, _ in after} == {401}
        assert all(body["type"].endswith("/problems/key-revoked") for _, body in after)

    def test_key_sent_over_plain_http_is_refused_afterwards(self, live_enclave, live_account):
        token = new_key(live_enclave, live_account)
        status, body = request(f"{live_enclave.http_url}/api/v1/api-keys", token)
        assert status == 403
        assert body["type"].endswith("/problems/https-required")
        status, body = request(f"{live_enclave.https_url}/api/v1/api-keys", token,
                               live_enclave.ca_file)
        assert status == 401
        assert body["type"].endswith("/problems/key-exposed")
