"""A worker SIGKILLed in the middle of a 20,000-recipient broadcast, then restarted: every
recipient gets the message, a duplicate only for the message in flight on the killed
worker's connection (the same Message-ID, the row's second attempt on record), and the
broadcast ends "sent" — not before the restarted worker is done, and not stuck.

The kill lands mid-hand-over every time, never between two batches: a third of the way
through, the sink records each message but keeps its answer back until every worker waits
on one; the first worker dies there (its message received, its "250" never read), then the
sink answers again.

Real processes all the way: PostgreSQL (a database of its own), the send pipeline in
worker processes (``benchmarks/bench_email.py``'s steps), an aiosmtpd sink in its own
process. The restarted worker runs with its clock past the dead worker's lease — what a
restart ``pipeline.LEASE`` later sees. Not a ``django_db`` test: it runs in the suite's
first pass (PostgreSQL is required there in CI).
"""

from __future__ import annotations

import json
import secrets
import signal
import time

import pytest
from benchmarks import bench_email

from enclave.messaging import pipeline
from enclave.testing.plugin import postgres_reachable

RECIPIENTS = 20_000
WORKERS = 2
DEADLINE_S = 900


def _tell(sink, command: str) -> None:
    sink.stdin.write(f"{command}\n")
    sink.stdin.flush()


def _held(sink) -> int:
    _tell(sink, "held")
    return int(sink.stdout.readline())


def _stats(sink) -> dict:
    sink.stdin.write("stats\n")
    sink.stdin.flush()
    return json.loads(sink.stdout.readline())


@pytest.fixture(scope="module")
def run():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    with bench_email.deployment(f"enclave_reliability_{secrets.token_hex(3)}") as (
            env, sink, port):
        made = bench_email._step(env, "prepare", {"small": 1, "large": RECIPIENTS,
                                                  "snapshot": 0, "short": True})
        broadcast = {"broadcast": made["large_broadcast"]}
        bench_email._step(env, "queue", broadcast)
        workers = [bench_email.start_sender(env, port) for _ in range(WORKERS)]
        deadline = time.monotonic() + DEADLINE_S
        while bench_email._sink_count(sink) < RECIPIENTS // 3:
            assert time.monotonic() < deadline, "the workers stalled"
            assert all(w.poll() is None for w in workers), "a worker ended early"
            time.sleep(0.02)
        _tell(sink, "hold")
        while _held(sink) < WORKERS:
            assert time.monotonic() < deadline, "the workers stalled"
            assert all(w.poll() is None for w in workers), "a worker ended early"
            time.sleep(0.02)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(30)
        _tell(sink, "release")
        for survivor in workers[1:]:
            survivor.wait(DEADLINE_S)
        after_kill = bench_email._step(env, "state", broadcast)
        restarted = bench_email.start_sender(env, port,
                                             skew=pipeline.LEASE.total_seconds() + 60)
        restarted.wait(DEADLINE_S)
        yield {"after_kill": after_kill, "end": bench_email._step(env, "state", broadcast),
               "sink": _stats(sink), "killed_rc": workers[0].returncode,
               "others_rc": [w.returncode for w in (*workers[1:], restarted)]}


def test_the_worker_was_killed_mid_broadcast(run):
    assert (run["killed_rc"], run["others_rc"]) == (-signal.SIGKILL, [0] * WORKERS)
    assert run["after_kill"]["progress"]["sent"] < RECIPIENTS


def test_the_broadcast_is_not_finished_while_a_dead_workers_rows_wait(run):
    assert run["after_kill"]["state"] == "queued"
    assert run["after_kill"]["progress"]["sending"] > 0


def test_every_recipient_received_the_message(run):
    assert run["sink"]["recipients"] == RECIPIENTS


def test_a_duplicate_only_for_the_message_in_flight_on_the_killed_connection(run):
    repeated = run["sink"]["repeated"]
    assert len(repeated) == 1  # the killed worker had one SMTP connection
    assert run["sink"]["messages"] == RECIPIENTS + 1
    [(recipient, ids)] = repeated.items()
    assert ids == [ids[0]] * 2  # the same mail again, not a new one
    assert run["end"]["retried"][recipient] == ids[0]  # its second attempt is on record


def test_the_broadcast_ends_sent_with_every_row_sent(run):
    assert run["end"]["state"] == "sent"
    assert run["end"]["progress"] == {"queued": 0, "waiting": 0, "sending": 0,
                                      "sent": RECIPIENTS, "deferred": 0, "failed": 0, "skipped": 0,
                                      "bounced": 0, "opened": 0, "clicked": 0}
