"""Outgoing webhook dispatch on PostgreSQL to a local receiver, next to a baseline measured
in the same run.

``ENCLAVE_BENCH_WEBHOOKS`` deliveries (default 10,000) queued for ``ENDPOINTS`` endpoints
(default 8) of one account — ``subscription.changed`` events, ids only, so the figure is
the dispatch itself: claim, sign (Standard Webhooks), POST through the SSRF-guarded
client, record — delivered by ``WORKERS`` worker processes (default 2) running the real
engine (``webhooks.delivery.run_once`` until nothing is due; each claims endpoints and
delivers their queues in threads) to an HTTP receiver in its own process. Baseline: bare
``http.client`` POSTs of same-sized bodies to the same receiver, a new connection each
(as the engine makes), from the same number of processes. Target (issue 16): ≥ 500
signed deliveries/s.

The database ``enclave_bench_webhooks`` on 127.0.0.1:5432 is created, migrated and dropped
again. ``python -m benchmarks bench_webhooks``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_people import _env, _psql, _setup, ask_count, run_and_report, run_step

DB = os.environ.get("ENCLAVE_BENCH_WEBHOOKS_DB", "enclave_bench_webhooks")
DELIVERIES = int(os.environ.get("ENCLAVE_BENCH_WEBHOOKS", "10000"))
ENDPOINTS = int(os.environ.get("ENCLAVE_BENCH_WEBHOOKS_ENDPOINTS", "8"))
WORKERS = int(os.environ.get("ENCLAVE_BENCH_WEBHOOKS_WORKERS", "2"))
TARGET = 500


def run(*, deliveries: int = DELIVERIES, endpoints: int = ENDPOINTS,
        workers: int = WORKERS, db: str = DB) -> dict:
    _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{db}"')
    receiver = None
    try:
        with tempfile.TemporaryDirectory() as var:
            env = {**_env(db, var), "ENCLAVE_OUTBOUND_ALLOW": "127.0.0.1/32"}
            subprocess.run([sys.executable, "-m", "enclave", "manage", "migrate", "-v0"],
                           env=env, check=True, timeout=300)
            receiver = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_webhooks", "receiver"], env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            port = int(receiver.stdout.readline().split()[1])
            out = _step(env, "prepare", {"port": port, "deliveries": deliveries,
                                         "endpoints": endpoints})
            start = time.perf_counter()
            senders = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_webhooks",
                                         "send", "{}"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
                       for _ in range(workers)]
            reports = [json.loads(p.communicate()[0].strip().splitlines()[-1])
                       for p in senders]
            out["seconds"] = time.perf_counter() - start
            out["delivered"] = sum(r.get("delivered", 0) for r in reports)
            out["other"] = [{k: v for k, v in r.items() if k != "delivered"}
                            for r in reports]
            out["received"] = ask_count(receiver)
            out["baseline"] = _step(env, "baseline", {"port": port, "workers": workers,
                                                      "requests": min(deliveries, 5000)})
            out["workers"] = workers
            return out
    finally:
        if receiver is not None:
            receiver.communicate(timeout=30)
        _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _step(env: dict, name: str, args: dict) -> dict:
    return run_step("bench_webhooks", env, name, args)


def report(r: dict) -> None:
    assert r["delivered"] == r["received"] == r["queued"], r
    rate = r["delivered"] / r["seconds"]
    base = r["baseline"]["requests"] / r["baseline"]["seconds"]
    print(f"{r['queued']:,} deliveries to {r['endpoints']} endpoints, {r['workers']} "
          f"worker(s): {r['seconds']:.1f} s, {rate:,.0f} signed deliveries/s (target "
          f"≥ {TARGET}: {'met' if rate >= TARGET else 'MISSED'}); bare http.client "
          f"baseline {base:,.0f} requests/s; ratio {rate / base:.2f}")


def main() -> None:
    run_and_report(run, report)


# --- steps (subprocesses with ENCLAVE_* pointing at the bench database) ---

def prepare(args: dict) -> dict:
    """An account, its endpoints to the receiver, and the queued deliveries (ids only)."""
    from enclave.access.permissions import ROLE_PERMISSIONS
    from enclave.access.principal import MEMBER, Principal
    from enclave.accounts.models import Account, Membership
    from enclave.core import clock
    from enclave.identity.models import Member
    from enclave.webhooks import events
    from enclave.webhooks.actions import do_create_webhook_endpoint
    from enclave.webhooks.models import WebhookDelivery

    account = Account.objects.create(name="Bench Hooks")
    member = Member(email="owner@bench.example")
    member.set_unusable_password()
    member.save()
    membership = Membership.objects.create(member=member, account=account, role="owner")
    owner = Principal(kind=MEMBER, member=member, membership=membership, account=account,
                      perms=frozenset(ROLE_PERMISSIONS["owner"]), member_id=member.pk,
                      account_id=account.pk)
    hooks = [do_create_webhook_endpoint(
        account, url=f"http://127.0.0.1:{args['port']}/hook/{n}",
        event_types=[events.SUBSCRIPTION_CHANGED], role_ceiling="viewer", actor=owner)[0]
        for n in range(args["endpoints"])]
    now = clock.now()
    stamp = now.isoformat().replace("+00:00", "Z")
    rows = [WebhookDelivery(
        endpoint=hooks[n % len(hooks)], event_type=events.SUBSCRIPTION_CHANGED,
        message_id=events.new_message_id(), created_at=now, next_attempt_at=now,
        payload=json.dumps({"type": events.SUBSCRIPTION_CHANGED, "timestamp": stamp,
                            "data": {"person": {"id": n}, "topic": {"id": 1},
                                     "status": "subscribed", "method": "api"}}))
        for n in range(args["deliveries"])]
    WebhookDelivery.objects.bulk_create(rows, batch_size=5000)
    return {"queued": len(rows), "endpoints": len(hooks)}


def send(args: dict) -> dict:
    from enclave.webhooks import delivery

    totals: dict[str, int] = {}
    while counts := delivery.run_once():
        for state, n in counts.items():
            totals[state] = totals.get(state, 0) + n
    return totals


def baseline(args: dict) -> dict:
    """``requests`` bare POSTs of a same-sized body, a new connection each, split over
    ``workers`` processes."""
    import http.client
    import multiprocessing

    body = json.dumps({"type": "subscription.changed", "timestamp": "2026-12-07T00:00:00Z",
                       "data": {"person": {"id": 1}, "topic": {"id": 1},
                                "status": "subscribed", "method": "api"}}).encode()
    share = args["requests"] // args["workers"]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(args["workers"] + 1)

    def loop() -> None:
        barrier.wait()
        for _ in range(share):
            conn = http.client.HTTPConnection("127.0.0.1", args["port"], timeout=10)
            conn.request("POST", "/baseline", body=body,
                         headers={"content-type": "application/json",
                                  "connection": "close"})
            conn.getresponse().read()
            conn.close()

    procs = [context.Process(target=loop) for _ in range(args["workers"])]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    for proc in procs:
        proc.join()
    return {"requests": share * args["workers"], "seconds": time.perf_counter() - start}


def receiver() -> None:
    """An HTTP receiver that answers 200 and counts the webhook requests (those under
    /hook/); prints ``port N``, then answers each ``count`` line on stdin."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    counted = {"n": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.startswith("/hook/"):
                with lock:
                    counted["n"] += 1
            self.send_response(200)
            self.send_header("content-length", "0")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 512
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_address[1]}", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(counted["n"], flush=True)
    with contextlib.suppress(Exception):
        server.shutdown()


STEPS = {"prepare": prepare, "send": send, "baseline": baseline}

if __name__ == "__main__" and sys.argv[1:2] == ["receiver"]:
    receiver()
elif __name__ == "__main__" and sys.argv[1:2] and sys.argv[1] in STEPS:
    _setup()
    print(json.dumps(STEPS[sys.argv[1]](json.loads(sys.argv[2]))))
