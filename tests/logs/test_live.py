"""Planted secrets against a real `enclave serve` (gunicorn + worker): its terminal output
and its encrypted store hold the requests' context but none of the secrets."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

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


def fetch_plain(live, path: str) -> int:
    """A request to the plain-HTTP listener (it answers 301; the redirect is not followed)."""
    conn = http.client.HTTPConnection("localhost", live.http_port, timeout=15)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


TOKEN_ROUTES = ("/app/password/reset/{}", "/app/invite/{}", "/app/signup/{}", "/app/setup/{}")
SETUP_LINE = '"GET /app/setup/[REDACTED:one_time_token] HTTP/1.1" 200'


def received(sock: socket.socket) -> str:
    """Every datagram waiting on ``sock`` (the syslog aggregator's view)."""
    sock.settimeout(0.5)
    chunks = []
    with contextlib.suppress(TimeoutError):
        while True:
            chunks.append(sock.recv(65536).decode("utf-8", "replace"))
    return "\n".join(chunks)


def gunicorn_access(stored: str) -> list[str]:
    return [json.loads(line)["event"] for line in stored.splitlines()
            if '"gunicorn.access"' in line]


@pytest.mark.slow
class TestLiveOneTimeTokens:
    def test_token_links_and_search_terms_reach_no_sink(self, tmp_path):
        tokens = [planted.enclave_key()[9:] for _ in range(len(TOKEN_ROUTES) + 2)]
        search = "alice.planted." + planted.enclave_key()[9:21].lower()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        syslog.bind(("127.0.0.1", 0))
        syslog_address = f"127.0.0.1:{syslog.getsockname()[1]}"
        with syslog, run_enclave(tmp_path / "var", ENCLAVE_LOG_SYSLOG=syslog_address) as live:
            setup_link = live.setup_link()
            setup_token = setup_link.rsplit("/", 1)[1]
            statuses = [fetch(live, f"/app/setup/{setup_token}")[0]]  # the real, valid link
            for route, value in zip(TOKEN_ROUTES, tokens, strict=False):
                statuses.append(fetch(live, route.format(value))[0])
                statuses.append(fetch(live, route.format(value), data=b"x=1", headers=form)[0])
            statuses.append(fetch(live, f"/app/login/?next=/app/invite/{tokens[4]}")[0])
            statuses.append(fetch(live, "/app/login/?next="
                                  + quote(f"/app/invite/{tokens[5]}", safe=""))[0])
            statuses.append(fetch_plain(live, f"/app/invite/{tokens[1]}"))
            # Not signed in: 302 to /app/login/?next=<this path and query>, followed.
            statuses.append(fetch(live, f"/app/people/?q={search}%40example.com")[0])
            statuses.append(fetch(live, f"/app/people/?q={search}&sort=name")[0])
            # gunicorn logs its access line after the response: wait until it is stored.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                everything = cli(live, "search", "--since", "1h", "--limit", "100000")
                if any(SETUP_LINE in e for e in gunicorn_access(everything.stdout)):
                    break
                time.sleep(0.5)
            verified = cli(live, "verify")
            output = live.log()
            syslogged = received(syslog)
        assert statuses == [200, 404, 403, 404, 403, 404, 403, 404, 403, 200, 200, 301, 200,
                            200]
        assert everything.returncode == 0, everything.stderr
        stored = everything.stdout
        assert any(SETUP_LINE in e for e in gunicorn_access(stored))
        assert "Not Found: /app/invite/[REDACTED:one_time_token]" in stored
        assert "/app/login/?next=/app/invite/[REDACTED:one_time_token]" in stored
        assert "/app/people/?q=[REDACTED:personal_data]&sort=name" in stored
        for value in [*tokens, setup_token, search]:
            assert value not in stored
            assert value not in everything.stderr
        # The terminal shows the link once, where `enclave serve` hands it to the operator.
        assert [line for line in output.splitlines() if setup_token in line] == [
            f"Create the owner account (one-time link): {setup_link}"]
        for value in [*tokens, search]:
            assert value not in output
        assert "/app/invite/[REDACTED:one_time_token]" in output
        assert "/app/invite/[REDACTED:one_time_token]" in syslogged
        for value in [*tokens, setup_token, search]:
            assert value not in syslogged
        assert verified.returncode == 0, verified.stderr
