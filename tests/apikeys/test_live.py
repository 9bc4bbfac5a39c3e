"""Against a real ``enclave serve`` (gunicorn workers, own processes): a key made with the
CLI works, a revocation by another process takes effect on the next request, and a key
sent over plain HTTP is refused from then on."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.live_accounts import add_owner_account, cli_key, enclave

EMAIL = "live-keys@apikeys.example"


def request(url: str, token: str, cafile=None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=15) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def live_enclave(live_with_accounts):
    return live_with_accounts


@pytest.fixture(scope="module")
def live_account(live_enclave) -> int:
    return add_owner_account(live_enclave, EMAIL, "Live keys")


def new_key(live, account_id: int) -> str:
    return cli_key(live, account_id, EMAIL, "api_keys:read")


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
