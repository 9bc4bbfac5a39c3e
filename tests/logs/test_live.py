"""Planted secrets against a real `enclave serve` (gunicorn + worker): its terminal output
and its encrypted store hold the requests' context but none of the secrets."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from enclave.testing.live import run_enclave
from tests.logs import planted


def fetch(live, path: str, *, data: bytes | None = None, headers: dict | None = None):
    ctx = ssl.create_default_context(cafile=str(live.ca_file))
    request = urllib.request.Request(f"{live.https_url}{path}", data=data,  # noqa: S310
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=15) as response:  # noqa: S310
            return response.status, response.headers["X-Trace-Id"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["X-Trace-Id"]


def cli(live, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enclave", "logs", *args], env=live.env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
class TestLiveServer:
    def test_served_requests_are_logged_with_context_and_without_secrets(self, tmp_path):
        key, other_key, card = planted.enclave_key(), planted.enclave_key(), planted.card_number()
        password = "pw-" + planted.enclave_key()[9:]
        with run_enclave(tmp_path / "var") as live:
            api = fetch(live, f"/api/v1/health?api_key={key}&page=2",
                        headers={"Authorization": f"Bearer {other_key}", "X-Api-Key": key})
            page = fetch(live, f"/app/orders/{card}")
            login = fetch(live, "/app/login/", data=f"email=a%40b.c&password={password}".encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
            deadline = time.monotonic() + 20
            found = None
            while time.monotonic() < deadline:
                found = cli(live, "search", "--trace-id", api[1])
                if api[1] in found.stdout:
                    break
                time.sleep(0.5)
            everything = cli(live, "search", "--since", "1h", "--limit", "100000")
            verified = cli(live, "verify")
            output = live.log()
        assert (api[0], page[0], login[0]) == (200, 404, 403)
        record = json.loads(found.stdout.splitlines()[0])
        assert record["path"] == "/api/v1/health?api_key=[REDACTED:token]&page=2"
        assert record["status"] == 200
        assert record["kind"] == "access"
        assert page[1] in everything.stdout
        assert "/app/orders/[REDACTED:card]" in everything.stdout
        assert api[1] in output  # the terminal shows the same JSON access line
        for secret in (key, other_key, card, password):
            assert secret not in everything.stdout
            assert secret not in output
        assert verified.returncode == 0, verified.stderr
        segments = list((tmp_path / "var" / "logs").glob("segment-*.elog"))
        assert segments
        assert all(b"/api/v1/health" not in p.read_bytes() for p in segments)
