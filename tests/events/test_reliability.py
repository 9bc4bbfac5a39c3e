"""Reliability: SIGKILL the HTTPS app server in the middle of a stream of ingest batches.

Runs the real stack (``enclave serve``: gunicorn + TLS) on a fresh PostgreSQL database.
A client thread streams batches with message ids; once some are acknowledged, the
gunicorn master and its workers are killed with SIGKILL. Afterwards every batch that got
a 202 must be in the database, and after a restart the client re-sends everything it
was not sure about (plus batches already acknowledged): nothing is stored twice, and no
batch was ever stored in part.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from benchmarks.bench_ingest import count_rows, deployment_env, fresh_database, make_ingest_key

from enclave.testing.live import run_enclave

pytestmark = pytest.mark.slow
PG = (os.environ.get("ENCLAVE_TEST_PG_HOST", "127.0.0.1"),
      int(os.environ.get("ENCLAVE_TEST_PG_PORT", "5432")))
BATCHES = 400
PER_BATCH = 20


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(PG, timeout=3):
            return True
    except OSError:
        return False


def batch_body(n: int) -> bytes:
    return json.dumps({"batch": [
        {"type": "track", "event": "Streamed", "message_id": f"b{n}-{j}",
         "properties": {"batch": n, "item": j}} for j in range(PER_BATCH)]}).encode()


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def https_gunicorn(supervisor_pid: int) -> tuple[int, list[int]]:
    """(master pid, worker pids) of the HTTPS gunicorn under ``enclave serve``."""
    for pid in children(supervisor_pid):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"gunicorn_https" in cmdline:
            return pid, children(pid)
    raise AssertionError("no HTTPS gunicorn found under enclave serve")


class Streamer:
    """Sends batches in order over one keep-alive connection until told to stop."""

    def __init__(self, live, token: str) -> None:
        self.live, self.token = live, token
        self.acked: list[int] = []
        self.unsure: list[int] = []
        self.stop = threading.Event()

    def connection(self, live) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(live.ca_file))
        return http.client.HTTPSConnection("localhost", live.https_port, context=context,
                                           timeout=30)

    def post(self, conn, n: int) -> int:
        conn.request("POST", "/api/v1/events", body=batch_body(n), headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status

    def run(self) -> None:
        # Closed on every way out: an unclosed TLS socket is a ResourceWarning, which the
        # suite turns into an error wherever the garbage collector happens to find it.
        conn = self.connection(self.live)
        try:
            self._send_all(conn)
        finally:
            conn.close()

    def _send_all(self, conn) -> None:
        for n in range(BATCHES):
            if self.stop.is_set():
                return
            try:
                status = self.post(conn, n)
            except (OSError, http.client.HTTPException):
                self.unsure.append(n)  # sent, answer lost: it may or may not be stored
                self.unsure.extend(range(n + 1, BATCHES))
                return
            (self.acked if status == 202 else self.unsure).append(n)


def stored_per_batch(dsn: str) -> dict[int, int]:
    """{batch number: events stored} from the message ids ``b<batch>-<item>``."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT split_part(message_id, '-', 1), count(*) "
                            "FROM events_event GROUP BY 1").fetchall()
    return {int(prefix[1:]): count for prefix, count in rows}


@pytest.mark.skipif(not _pg_reachable(), reason="PostgreSQL is unreachable")
def test_acknowledged_batches_survive_sigkill_and_retries_are_not_duplicated(tmp_path):
    var_dir = tmp_path / "var"
    with fresh_database() as dsn:
        with run_enclave(var_dir, timeout=180, ENCLAVE_DATABASE_URL=dsn) as live:
            _, token, _ = make_ingest_key(deployment_env(live, dsn))
            streamer = Streamer(live, token)
            thread = threading.Thread(target=streamer.run)
            thread.start()
            deadline = time.monotonic() + 120
            while len(streamer.acked) < 25 and thread.is_alive() \
                    and time.monotonic() < deadline:
                time.sleep(0.01)
            master, workers = https_gunicorn(live.process.pid)
            for pid in (*workers, master):
                os.kill(pid, signal.SIGKILL)
            thread.join(timeout=60)
            assert not thread.is_alive()
        acked, unsure = list(streamer.acked), list(streamer.unsure)
        # The kill landed in the middle of the stream: some acknowledged, some not.
        assert len(acked) >= 25
        assert unsure

        # Every acknowledged batch is in the database, each event once; a batch whose
        # answer was lost is there completely or not at all (never half).
        stored = stored_per_batch(dsn)
        assert all(stored.get(n) == PER_BATCH for n in acked)
        assert all(stored.get(n, 0) in (0, PER_BATCH) for n in unsure)

        # Restart on the same database and keyring; re-send what was unsure and a few
        # acknowledged batches. Everything is accepted, nothing is stored twice.
        with run_enclave(var_dir, timeout=180, ENCLAVE_DATABASE_URL=dsn) as live:
            retry = Streamer(live, token)
            conn = retry.connection(live)
            try:
                statuses = {n: retry.post(conn, n) for n in [*unsure, *acked[-5:]]}
            finally:
                conn.close()
        assert set(statuses.values()) == {202}
        total = count_rows(dsn, "SELECT count(*) FROM events_event")
        distinct = count_rows(dsn, "SELECT count(DISTINCT message_id) FROM events_event")
        assert total == distinct == BATCHES * PER_BATCH
