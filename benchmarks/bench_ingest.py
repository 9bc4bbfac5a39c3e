"""Ingest throughput over HTTPS versus raw psycopg ``executemany`` of the same rows.

(a) events/s through ``POST /api/v1/events`` of the real served stack (``enclave serve``:
gunicorn + Enclave's TLS, PostgreSQL), batches of 100 track events with message ids,
from keep-alive HTTPS clients (a few threads sharing the machine); (b) the baseline: the
same rows (message ids and events) written by raw psycopg ``executemany`` into the same
tables, one transaction per batch of 100 (the durability of one acknowledged request),
from as many connections as there are HTTP clients, in the same run, rounds interleaved.
Also printed for reference: every row in one transaction on one connection. Targets:
ratio HTTPS/raw >= 0.35 and at least 5,000 events/s.

(c) the tracking spec's batch call (``/api/ingest/v1/batch``, the Segment / RudderStack
SDKs' endpoint): the same events as spec messages (anonymousId, messageId, timestamp,
properties), the key as the Basic user name, same clients, same rounds. Target: spec
events/s >= 0.8x native ingest's in the same run.

Knobs: ENCLAVE_BENCH_EVENTS (events per round, default 30000), ENCLAVE_BENCH_ROUNDS
(interleaved rounds, best counts — for the spec ratio the median
round's native/spec ratio; default 5), ENCLAVE_BENCH_CLIENTS (client threads and
baseline connections, default 4), ENCLAVE_BENCH_PG_HOST / _PORT.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BATCH = 100
TARGET_SPEC_RATIO = 0.8
TARGET_RATIO = 0.35
TARGET_EPS = 5000
HOST = os.environ.get("ENCLAVE_BENCH_PG_HOST", "127.0.0.1")
PORT = os.environ.get("ENCLAVE_BENCH_PG_PORT", "5432")

# Run inside the deployment's environment: an account, its owner and an ingest key made
# through the real create action (scopes: the arguments, else events:write). Prints
# "<account id> <token> <public id>".
SETUP = """
import sys
import django
django.setup()
from django.db import transaction
from enclave.accounts.access import principal_for
from enclave.accounts.models import Account, Membership
from enclave.apikeys.actions import do_create_api_key
from enclave.identity.models import Member
account = Account.objects.create(name="Bench")
member = Member(email="bench-owner@example.com")
member.set_unusable_password()
member.save()
Membership.objects.create(member=member, account=account, role="owner")
with transaction.atomic():
    token, key = do_create_api_key(account, name="bench",
                                   scopes=sys.argv[1:] or ["events:write"],
                                   actor=principal_for(member, account.pk))
print(account.pk, token, key.public_id)
"""


def _psql(database: str, sql: str) -> None:
    subprocess.run(["psql", "-h", HOST, "-p", PORT, "-U", "postgres", "-d", database,
                    "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True,
                   capture_output=True)


def bodies(count: int, run: str) -> list[bytes]:
    """``count`` events as JSON batches of 100 track events with unique message ids."""
    out = []
    for start in range(0, count, BATCH):
        events = [{"type": "track", "event": "Page viewed", "message_id": f"{run}-{i}",
                   "timestamp": "2026-01-31T12:00:00Z",
                   "properties": {"path": f"/pricing/{i % 50}", "referrer": "search",
                                  "duration_ms": i % 9000, "new_visitor": i % 3 == 0}}
                  for i in range(start, min(start + BATCH, count))]
        out.append(json.dumps({"batch": events}).encode())
    return out


def spec_bodies(count: int, run: str) -> list[bytes]:
    """The same events as :func:`bodies`, as the tracking spec's batch call."""
    out = []
    for start in range(0, count, BATCH):
        events = [{"type": "track", "event": "Page viewed", "messageId": f"{run}-{i}",
                   "anonymousId": f"visitor-{i % 500}", "timestamp": "2026-01-31T12:00:00Z",
                   "properties": {"path": f"/pricing/{i % 50}", "referrer": "search",
                                  "duration_ms": i % 9000, "new_visitor": i % 3 == 0}}
                  for i in range(start, min(start + BATCH, count))]
        out.append(json.dumps({"batch": events}).encode())
    return out


NATIVE = ("/api/v1/events", 202)
SPEC = ("/api/ingest/v1/batch", 200)


def send_all(url_host: str, port: int, ca_file: Path, token: str, payloads: list[bytes],
             clients: int, call: tuple[str, int] = NATIVE) -> float:
    """POST every payload to ``call`` (path, expected status) over keep-alive HTTPS
    connections from ``clients`` threads; returns the wall time. Any other answer fails
    the run. The spec's call gets the key as the Basic user name, as its SDKs send it."""
    context = ssl.create_default_context(cafile=str(ca_file))
    path, expected = call
    auth = (f"Bearer {token}" if call == NATIVE
            else "Basic " + base64.b64encode(f"{token}:".encode()).decode())
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    errors: list[str] = []

    def worker(part: list[bytes]) -> None:
        conn = http.client.HTTPSConnection(url_host, port, context=context, timeout=60)
        try:
            for body in part:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != expected:
                    errors.append(f"{response.status} {answer[:300]!r}")
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(payloads[i::clients],))
               for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"ingest failed: {errors[0]}")
    return elapsed


def _rows(account_id: int, public_id: str, first: int, last: int, run: str):
    from psycopg.types.json import Jsonb

    now = dt.datetime.now(dt.UTC)
    occurred = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)
    ids = [(i, f"{run}-{i}") for i in range(first, last)]
    return ([(account_id, m, now) for _, m in ids],
            [(account_id, "Page viewed",
              Jsonb({"path": f"/pricing/{i % 50}", "referrer": "search",
                     "duration_ms": i % 9000, "new_visitor": i % 3 == 0}),
              m, occurred, now, public_id) for i, m in ids])


def _insert(cur, message_rows, event_rows) -> None:
    cur.executemany("INSERT INTO events_messageid (account_id, message_id, received_at) "
                    "VALUES (%s, %s, %s)", message_rows)
    cur.executemany("INSERT INTO events_event (account_id, person_id, type, name, properties,"
                    " message_id, occurred_at, received_at, key_public_id) VALUES "
                    "(%s, NULL, 'track', %s, %s, %s, %s, %s, %s)", event_rows)


def baseline(dsn: str, account_id: int, public_id: str, count: int, run: str,
             clients: int = 1) -> float:
    """Raw psycopg: the same rows into the same tables with ``executemany``, one
    transaction per batch of 100 (the durability of one ingest request), from ``clients``
    connections in parallel (the HTTP side's concurrency). Returns the wall time."""
    import psycopg

    starts = list(range(0, count, BATCH))
    prepared = {f: _rows(account_id, public_id, f, min(f + BATCH, count), run) for f in starts}

    def worker(part: list[int]) -> None:
        with psycopg.connect(dsn) as conn:
            for first in part:
                with conn.transaction(), conn.cursor() as cur:
                    _insert(cur, *prepared[first])

    threads = [threading.Thread(target=worker, args=(starts[i::clients],))
               for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def bulk_reference(dsn: str, account_id: int, public_id: str, count: int, run: str) -> float:
    """For reference only: every row in ONE transaction on one connection (no per-batch
    commit — not the durability an acknowledged ingest request has)."""
    import psycopg

    message_rows, event_rows = _rows(account_id, public_id, 0, count, run)
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            _insert(cur, message_rows, event_rows)
        return time.perf_counter() - start


@contextlib.contextmanager
def fresh_database():
    """A new, empty PostgreSQL database for one run; yields its URL, drops it after."""
    name = f"enclave_bench_{secrets.token_hex(4)}"
    _psql("postgres", f"CREATE DATABASE {name}")
    try:
        yield f"postgres://postgres@{HOST}:{PORT}/{name}"
    finally:
        _psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def deployment_env(live, dsn: str) -> dict[str, str]:
    """The environment of commands that act on ``live``'s deployment (same DB, keyring)."""
    from enclave.testing.live import server_env

    return server_env(live.var_dir, live.https_port, live.http_port,
                      ENCLAVE_DATABASE_URL=dsn, DJANGO_SETTINGS_MODULE="enclave.settings")


def make_ingest_key(env: dict[str, str], *scopes: str) -> tuple[int, str, str]:
    """(account id, token, public id) of a new account's key (events:write unless
    ``scopes`` are given)."""
    out = subprocess.run([sys.executable, "-c", SETUP, *scopes], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[-3]), out[-2], out[-1]


def count_rows(dsn: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchone()[0]


@contextlib.contextmanager
def deployment():
    """A fresh PostgreSQL database served by ``enclave serve``; yields (live, env, dsn)."""
    from enclave.testing.live import run_enclave

    with fresh_database() as dsn, tempfile.TemporaryDirectory() as tmp, run_enclave(
            Path(tmp) / "var", timeout=180, ENCLAVE_DATABASE_URL=dsn) as live:
        yield live, deployment_env(live, dsn), dsn


def measure(events: int, clients: int, rounds: int = 1) -> dict:
    """Both sides on one fresh deployment, interleaved for ``rounds`` rounds (the machine's
    load drifts); the best round of each side counts. Figures as a dict."""
    served, spec, raw, bulk = [], [], [], []
    with deployment() as (live, env, dsn):
        account_id, token, public_id = make_ingest_key(env)
        warm = min(events, 20 * BATCH)
        send_all("localhost", live.https_port, live.ca_file, token, bodies(warm, "warm"),
                 clients)
        send_all("localhost", live.https_port, live.ca_file, token,
                 spec_bodies(warm, "warm-spec"), clients, SPEC)
        for r in range(rounds):
            served.append(send_all("localhost", live.https_port, live.ca_file, token,
                                   bodies(events, f"http{r}"), clients))
            spec.append(send_all("localhost", live.https_port, live.ca_file, token,
                                 spec_bodies(events, f"spec{r}"), clients, SPEC))
            raw.append(baseline(dsn, account_id, public_id, events, f"raw{r}", clients))
            bulk.append(bulk_reference(dsn, account_id, public_id, events, f"bulk{r}"))
        stored = count_rows(dsn, "SELECT count(*) FROM events_event "
                                 "WHERE message_id LIKE 'http%'")
        spec_stored = count_rows(dsn, "SELECT count(*) FROM events_event "
                                      "WHERE message_id LIKE 'spec%'")
    return {"events": events, "clients": clients, "rounds": rounds,
            "http_eps": events / min(served), "raw_eps": events / min(raw),
            "ratio": min(raw) / min(served), "bulk_eps": events / min(bulk),
            "bulk_ratio": min(bulk) / min(served), "stored": stored,
            # Each round sends native then spec back to back: the ratio of the two within a
            # round shares the machine's load of the moment; the median round counts
            # (best-of of each side alone mixed a quiet native round with a busy spec one).
            "spec_eps": events / min(spec),
            "spec_ratios": [a / b for a, b in zip(served, spec, strict=True)],
            "spec_ratio": statistics.median(a / b for a, b in zip(served, spec, strict=True)),
            "spec_stored": spec_stored}


def main() -> None:
    events = int(os.environ.get("ENCLAVE_BENCH_EVENTS", "30000"))
    clients = int(os.environ.get("ENCLAVE_BENCH_CLIENTS", "4"))
    rounds = int(os.environ.get("ENCLAVE_BENCH_ROUNDS", "5"))
    try:
        result = measure(events, clients, rounds)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"PostgreSQL or the server unavailable ({exc}); skipped")
        return
    ok_ratio = "meets" if result["ratio"] >= TARGET_RATIO else "BELOW"
    ok_eps = "meets" if result["http_eps"] >= TARGET_EPS else "BELOW"
    for key in ("stored", "spec_stored"):
        if result[key] != events * rounds:
            raise SystemExit(f"{key}: {result[key]} of {events * rounds} events")
    ok_spec = "meets" if result["spec_ratio"] >= TARGET_SPEC_RATIO else "BELOW"
    print(f"events: {events} per round in batches of {BATCH}, {clients} keep-alive HTTPS "
          f"clients, best of {rounds} interleaved rounds")
    print(f"ingest over HTTPS (gunicorn + TLS + PostgreSQL): {result['http_eps']:9.0f} events/s"
          f" ({ok_eps} the {TARGET_EPS} target)")
    print(f"raw psycopg executemany (same rows, same tables, commit per 100, {clients} "
          f"connections): {result['raw_eps']:8.0f} events/s")
    print(f"ratio HTTPS / raw: {result['ratio']:.2f} ({ok_ratio} the {TARGET_RATIO} target)")
    print(f"tracking spec batch call (/api/ingest/v1/batch, same events): "
          f"{result['spec_eps']:9.0f} events/s, {result['spec_ratio']:.2f}x native ingest "
          f"(median of the rounds' {', '.join(f'{r:.2f}' for r in result['spec_ratios'])}; "
          f"{ok_spec} the {TARGET_SPEC_RATIO} target)")
    print(f"reference: executemany of every row in ONE transaction, one connection: "
          f"{result['bulk_eps']:8.0f} events/s (ratio {result['bulk_ratio']:.2f})")


if __name__ == "__main__":
    main()
