"""Broadcast email at scale on PostgreSQL to a local SMTP sink, each figure next to a
baseline measured in the same run.

(a) **Throughput** — a broadcast to ``ENCLAVE_BENCH_EMAIL_LARGE`` recipients (default
    100,000) with per-recipient Liquid personalisation (an MJML template), DKIM-signed,
    sent by ``ENCLAVE_BENCH_EMAIL_WORKERS`` worker processes (default 2, one SMTP
    connection each) running the real pipeline (``pipeline.run_once`` until nothing is
    due) to an aiosmtpd sink in its own process. Baseline: a raw ``smtplib`` loop sending
    pre-rendered, pre-signed messages of the same template over the same number of
    connections to the same sink. Targets: ≥ 300 messages/s end to end (stretch 800) and
    ≥ 0.5× the baseline.
(b) **Memory** — the peak RSS (``VmHWM``) of each sending worker for a broadcast of
    ``ENCLAVE_BENCH_EMAIL_SMALL`` (default 10,000) and of the large one. Target: within
    20 MB of each other.
(c) **Snapshot** — queuing a broadcast to a ``ENCLAVE_BENCH_EMAIL_SNAPSHOT``-person
    segment (default 1,000,000; ``do_queue_broadcast``: one ``INSERT … SELECT``). Target:
    ≤ 10 s.

The database ``enclave_bench_email`` on 127.0.0.1:5432 is created, migrated, seeded with
COPY and dropped again. ``python -m benchmarks bench_email``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_people import (
    _env,
    _psql,
    _seed_copy,
    _setup,
    ask_count,
    run_and_report,
    run_step,
)

DB = os.environ.get("ENCLAVE_BENCH_EMAIL_DB", "enclave_bench_email")
SMALL = int(os.environ.get("ENCLAVE_BENCH_EMAIL_SMALL", "10000"))
LARGE = int(os.environ.get("ENCLAVE_BENCH_EMAIL_LARGE", "100000"))
SNAPSHOT = int(os.environ.get("ENCLAVE_BENCH_EMAIL_SNAPSHOT", "1000000"))
WORKERS = int(os.environ.get("ENCLAVE_BENCH_EMAIL_WORKERS", "2"))
BASELINE_MESSAGES = 20_000  # the raw loop's rate is steady well before this
RATE_TARGET, RATE_STRETCH, RATIO_TARGET = 300, 800, 0.5
RSS_TARGET_MB, SNAPSHOT_TARGET_S = 20, 10
DOMAIN = "news.bench.example"
SUBJECT = "{{ person.first_name | default: 'Hello' }}, your December news"
SOURCE = """<mjml><mj-body><mj-section><mj-column>
<mj-text font-size="18px">Hi {{ person.first_name }} {{ person.last_name }},</mj-text>
<mj-text>{% if person.company != blank %}Everyone at {{ person.company }} gets
  {% else %}You get{% endif %} our winter offer: {{ account.name }} ships free to
  {{ person.country | default: 'you' }} until the end of the month.</mj-text>
<mj-button href="https://shop.bench.example/winter">See the offer</mj-button>
<mj-text font-size="11px"><a href="{{ unsubscribe_url }}">Unsubscribe</a> ·
  <a href="{{ preferences_url }}">Preferences</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""

# A short personalised template (``prepare``'s ``short``): for the reliability test, which
# is about what arrives, not about the cost of a long newsletter.
SHORT_SOURCE = ("<p>Hi {{ person.first_name }}, news from {{ account.name }}.</p>"
                "<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>")


def run(*, small: int = SMALL, large: int = LARGE, snapshot: int = SNAPSHOT,
        workers: int = WORKERS, db: str = DB) -> dict:
    """Create and migrate ``db``, measure, drop ``db``."""
    with deployment(db) as (env, sink, port):
        out = {"workers": workers, **_step(env, "prepare", {
            "small": small, "large": large, "snapshot": snapshot})}
        for size in ("small", "large"):
            queued = _step(env, "queue", {"broadcast": out[f"{size}_broadcast"]})
            before = _sink_count(sink)
            start = time.perf_counter()
            senders = [start_sender(env, port, stdout=subprocess.PIPE)
                       for _ in range(workers)]
            reports = [json.loads(p.communicate()[0].strip().splitlines()[-1])
                       for p in senders]
            seconds = time.perf_counter() - start
            out[size] = {"recipients": queued["recipients"], "seconds": seconds,
                         "received": _sink_count(sink) - before,
                         "sent": sum(r["sent"] for r in reports),
                         "other": [r["other"] for r in reports],
                         "vmhwm_mb": [r["vmhwm_mb"] for r in reports]}
        before = _sink_count(sink)
        out["baseline"] = _step(env, "baseline", {
            "port": port, "messages": min(BASELINE_MESSAGES, large),
            "workers": workers, "broadcast": out["large_broadcast"]})
        out["baseline"]["received"] = _sink_count(sink) - before
        return out


@contextlib.contextmanager
def deployment(db: str):
    """A fresh, migrated database ``db`` with a deployment's environment pointing at it
    and the counting sink running: ``(env, sink, port)``; both gone afterwards."""
    _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{db}"')
    sink = None
    try:
        with tempfile.TemporaryDirectory() as var:
            env = _env(db, var)
            subprocess.run([sys.executable, "-m", "enclave", "manage", "migrate", "-v0"],
                           env=env, check=True, timeout=300)
            sink, port = start_sink(env)
            yield env, sink, port
    finally:
        if sink is not None:
            sink.communicate(timeout=30)  # closes its stdin: the sink stops
        _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def start_sink(env: dict) -> tuple[subprocess.Popen, int]:
    """The counting SMTP sink in its own process, and its port."""
    sink = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_email", "sink"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return sink, int(sink.stdout.readline().split()[1])


def start_sender(env: dict, port: int, *, skew: float = 0,
                 stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """A pipeline worker process (the ``send`` step) sending to ``port``."""
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_email", "send",
         json.dumps({"port": port, "skew_seconds": skew})],
        env=env, stdout=stdout, stderr=subprocess.DEVNULL, text=True)


def _step(env: dict, name: str, args: dict) -> dict:
    return run_step("bench_email", env, name, args)


_sink_count = ask_count


def report(r: dict) -> None:
    small, large, base = r["small"], r["large"], r["baseline"]
    for figures in (small, large):
        assert figures["sent"] == figures["received"] == figures["recipients"], figures
    rate = large["sent"] / large["seconds"]
    base_rate = base["messages"] / base["seconds"]
    ratio = rate / base_rate
    print(f"seeded {r['snapshot']:,} people in {r['seed_s']:.0f} s; {r['workers']} "
          f"worker(s), one SMTP connection each")
    print(f"(a) {large['sent']:,} personalised, DKIM-signed messages in "
          f"{large['seconds']:.1f} s: {rate:,.0f} messages/s (target ≥ {RATE_TARGET}: "
          f"{'met' if rate >= RATE_TARGET else 'MISSED'}; stretch {RATE_STRETCH}: "
          f"{'met' if rate >= RATE_STRETCH else 'not met'}); raw smtplib baseline "
          f"{base_rate:,.0f} messages/s ({base['messages']:,} pre-rendered); ratio "
          f"{ratio:.2f} (target ≥ {RATIO_TARGET}: "
          f"{'met' if ratio >= RATIO_TARGET else 'MISSED'})")
    s_mb, l_mb = max(small["vmhwm_mb"]), max(large["vmhwm_mb"])
    print(f"(b) worker peak RSS: {small['sent']:,} recipients {s_mb:.1f} MB, "
          f"{large['sent']:,} recipients {l_mb:.1f} MB (difference {l_mb - s_mb:+.1f} MB; "
          f"target within {RSS_TARGET_MB} MB: "
          f"{'met' if abs(l_mb - s_mb) <= RSS_TARGET_MB else 'MISSED'})")
    print(f"(c) snapshot of a {r['snapshot_rows']:,}-person segment into the outbox: "
          f"{r['snapshot_s']:.1f} s (target ≤ {SNAPSHOT_TARGET_S} s: "
          f"{'met' if r['snapshot_s'] <= SNAPSHOT_TARGET_S else 'MISSED'})")


def main() -> None:
    run_and_report(run, report)


# --- steps (subprocesses with ENCLAVE_* pointing at the bench database) ---

def _owner(account):
    from enclave.access.permissions import ROLE_PERMISSIONS
    from enclave.access.principal import MEMBER, Principal

    return Principal(kind=MEMBER, perms=frozenset(ROLE_PERMISSIONS["owner"]),
                     account_id=account.pk, account=account)


def _subscribe(topic_id: int, first: int, count: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor, cursor.connection.cursor() as raw, \
            raw.copy("COPY audience_subscription (person_id, topic_id, status, changed_at) "
                     "FROM STDIN") as copy:
        for base in range(first, first + count, 100_000):
            copy.write("".join(f"{pk}\t{topic_id}\tsubscribed\t2026-01-01 00:00:00+00\n"
                               for pk in range(base, min(base + 100_000, first + count))))


def prepare(args: dict) -> dict:
    """Seed people and subscriptions, time the snapshot of the big segment (then cancel
    that broadcast), make the small and large broadcasts as drafts."""
    from django.db import connection

    from enclave.accounts.models import Account
    from enclave.audience.actions import do_create_segment
    from enclave.audience.subscriptions import do_create_topic
    from enclave.messaging import actions
    from enclave.messaging.models import ACTIVE, VERIFIED, DkimKey, SenderDomain

    account = Account.objects.create(name="Bench Outfitters")
    owner = _owner(account)
    start = time.perf_counter()
    total = max(args["snapshot"], args["large"])
    _seed_copy(account.pk, 0, total, "p")
    first = account.people.order_by("pk").values_list("pk", flat=True).first()
    topics = {}
    for key, count in (("all", total), ("large", args["large"]), ("small", args["small"])):
        topics[key] = do_create_topic(account, key, key.title(), consent_text="News.",
                                      double_opt_in=False, actor=owner)
        _subscribe(topics[key].pk, first, count)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    seed_s = time.perf_counter() - start
    template = actions.do_create_template(account, "Winter", *(
        ("html", "Hi {{ person.first_name }}", SHORT_SOURCE) if args.get("short")
        else ("mjml", SUBJECT, SOURCE)), actor=owner)
    sender = actions.do_add_sender_domain(account, DOMAIN, actor=owner)
    DkimKey.objects.filter(domain=sender).update(state=ACTIVE)  # as if DNS had it
    SenderDomain.objects.filter(pk=sender.pk).update(state=VERIFIED)
    sender.refresh_from_db()
    segment = do_create_segment(account, "Britain", "dynamic", {
        "type": "group", "match": "all",
        "rules": [{"type": "field", "field": "country", "op": "equals", "value": "GB"}]},
        actor=owner)

    def draft(name, topic, segments=()):
        return actions.do_create_broadcast(account, name, template=template, sender=sender,
                                           from_local="news", from_name="Bench Outfitters",
                                           topics=[topic.pk], segments=segments,
                                           actor=owner)

    snapshot_rows = snapshot_s = 0
    if args["snapshot"]:  # 0: not measured (the reliability test)
        big = draft("Everyone in Britain", topics["all"], [segment.pk])
        start = time.perf_counter()
        big = actions.do_queue_broadcast(big, actor=owner)
        snapshot_s = time.perf_counter() - start
        snapshot_rows = big.recipients
        actions.do_cancel_broadcast(big, actor=owner)
    return {"seed_s": seed_s, "snapshot": total, "snapshot_rows": snapshot_rows,
            "snapshot_s": snapshot_s, "small": args["small"], "large": args["large"],
            "small_broadcast": draft("Small", topics["small"]).pk,
            "large_broadcast": draft("Large", topics["large"]).pk}


def queue(args: dict) -> dict:
    from enclave.messaging import actions
    from enclave.messaging.models import Broadcast

    broadcast = Broadcast.objects.select_related("account").get(pk=args["broadcast"])
    queued = actions.do_queue_broadcast(broadcast, actor=_owner(broadcast.account))
    return {"recipients": queued.recipients}


def _vmhwm_mb() -> float:
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def send(args: dict) -> dict:
    """The real pipeline, batch after batch, until nothing is due. ``skew_seconds`` runs
    it that far in the future (a worker restarted after its predecessor's lease ran
    out)."""
    import contextlib
    import datetime as dt

    from enclave.core import clock
    from enclave.messaging import pipeline, transports

    transport = transports.SmtpTransport("127.0.0.1", args["port"], security="none")
    totals: dict[str, int] = {}
    skew = args.get("skew_seconds", 0)
    with clock.travel(dt.timedelta(seconds=skew)) if skew else contextlib.nullcontext():
        try:
            while counts := pipeline.run_once(transport):
                for state, n in counts.items():
                    totals[state] = totals.get(state, 0) + n
        finally:
            transport.close()
    return {"sent": totals.pop("sent", 0), "other": totals, "vmhwm_mb": _vmhwm_mb()}


def baseline(args: dict) -> dict:
    """Pre-render and sign messages of the same template (as the pipeline would), then
    send ``messages`` of them with bare smtplib over ``workers`` connections at once."""
    import multiprocessing
    import smtplib

    from django.db import connection

    from enclave.access.permissions import ALL
    from enclave.core import clock
    from enclave.messaging import access, compose, headers, rendering
    from enclave.messaging.models import Broadcast
    from enclave.people.access import field_definitions

    broadcast = Broadcast.objects.select_related("template", "sender", "account") \
        .get(pk=args["broadcast"])
    key = access.signing_key(broadcast.sender)
    people = list(broadcast.account.people.order_by("pk")[:1000])
    definitions = field_definitions(broadcast.account_id)
    contexts = [{"person": rendering.person_context(p, ALL, definitions),
                 "account": {"name": broadcast.account.name},
                 "unsubscribe_url": headers.unsubscribe_url(p, broadcast.topics),
                 "preferences_url": "https://app.bench.example/preferences/x"}
                for p in people]
    rendered = rendering.render_batch(broadcast.template.subject,
                                      broadcast.template.compiled, contexts)
    pool = [compose.message(domain=DOMAIN, from_local="news", from_name="Bench",
                            to=p.email, rendered=out, message_id=f"base.{p.pk}",
                            unsubscribe_url=c["unsubscribe_url"], feedback_id="b:1:x:y",
                            selector=key[0], private_key=key[1], now=clock.now())
            for p, c, out in zip(people, contexts, rendered, strict=True)]
    connection.close()
    share = args["messages"] // args["workers"]
    barrier = multiprocessing.get_context("fork").Barrier(args["workers"] + 1)

    def loop() -> None:
        smtp = smtplib.SMTP("127.0.0.1", args["port"])
        barrier.wait()
        for n in range(share):
            envelope, raw = pool[n % len(pool)]
            smtp.sendmail(envelope.sender, [envelope.recipient], raw)
        smtp.quit()

    procs = [multiprocessing.get_context("fork").Process(target=loop)
             for _ in range(args["workers"])]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    for proc in procs:
        proc.join()
    return {"messages": share * args["workers"], "seconds": time.perf_counter() - start}


def sink() -> None:
    """An aiosmtpd server that counts what it accepts; prints ``port N``, then answers
    each ``count`` line on stdin with the number of messages received so far, and a
    ``stats`` line with JSON: messages, distinct recipients, and the recipients that got
    more than one message with the Message-IDs they got. ``hold`` makes it record each
    message but keep its answer back (the sender waits, mid-hand-over) until ``release``;
    ``held`` answers how many answers it keeps back now."""
    import asyncio
    import re
    from collections import defaultdict

    from aiosmtpd.controller import Controller

    message_id = re.compile(rb"^Message-ID: *(<[^>\r\n]*>)", re.MULTILINE | re.IGNORECASE)
    seen: dict[str, list[str]] = defaultdict(list)

    class Counter:
        received = 0
        hold = False
        held = 0

        async def handle_DATA(self, server, session, envelope):
            if not envelope.original_content.startswith(b"DKIM-Signature:"):
                return "554 unsigned"
            Counter.received += len(envelope.rcpt_tos)
            found = message_id.search(envelope.original_content)
            for rcpt in envelope.rcpt_tos:
                seen[rcpt].append(found[1].decode() if found else "")
            if Counter.hold:
                Counter.held += 1
                try:
                    while Counter.hold:
                        await asyncio.sleep(0.01)
                finally:
                    Counter.held -= 1
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(Counter.received, flush=True)
        elif line.strip() in ("hold", "release"):
            Counter.hold = line.strip() == "hold"
        elif line.strip() == "held":
            print(Counter.held, flush=True)
        elif line.strip() == "stats":
            print(json.dumps({"messages": Counter.received, "recipients": len(seen),
                              "repeated": {r: ids for r, ids in seen.items()
                                           if len(ids) > 1}}), flush=True)
    controller.stop()


def state(args: dict) -> dict:
    """A broadcast's state and progress, and the rows tried more than once."""
    from enclave.messaging import pipeline
    from enclave.messaging.models import Broadcast, OutboxMessage

    broadcast = Broadcast.objects.get(pk=args["broadcast"])
    retried = OutboxMessage.objects.filter(broadcast=broadcast, attempts__gt=1)
    return {"state": broadcast.state, "progress": pipeline.progress(broadcast),
            "retried": {email: f"<{mid}@{DOMAIN}>" for email, mid in
                        retried.values_list("person__email", "message_id")}}


STEPS = {"prepare": prepare, "queue": queue, "send": send, "baseline": baseline,
         "state": state}

if __name__ == "__main__" and sys.argv[1:2] == ["sink"]:
    sink()
elif __name__ == "__main__" and sys.argv[1:2] and sys.argv[1] in STEPS:
    _setup()
    print(json.dumps(STEPS[sys.argv[1]](json.loads(sys.argv[2]))))
