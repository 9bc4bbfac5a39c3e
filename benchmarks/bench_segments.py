"""Segments at scale on PostgreSQL, each figure next to a baseline measured in the same run.

(a) **Count** — the issue's rule (a field condition, a tag and "event X at least 3 times in
    the last 30 days") counted through ``audience.access.segment_people`` (rule parsed,
    checked, compiled to one query) over ``ENCLAVE_BENCH_SEGMENT_PEOPLE`` people (default
    1,000,000), ``ENCLAVE_BENCH_SEGMENT_EVENTS`` events (default 10,000,000) and 50 tags.
    Baseline: a hand-written SQL query for the same rule, run by psycopg. Targets: p95
    ≤ 1 s and ≤ 1.5× the baseline.
(b) **Preview** — the same rule's count plus a 20-person sample rendered through the
    visibility formatter for an analyst-like role that may author segments but sees
    personal data masked (tag and event conditions only: a field rule on personal data
    is refused for such a role). Target: p95 ≤ 1.5 s.

The database ``enclave_bench_segments`` on 127.0.0.1:5432 is created, migrated, seeded
with COPY and dropped again. ``python -m benchmarks bench_segments``; knobs:
``ENCLAVE_BENCH_SEGMENT_PEOPLE``, ``ENCLAVE_BENCH_SEGMENT_EVENTS``,
``ENCLAVE_BENCH_SEGMENT_REPEATS``. (Ingest throughput with 20 dynamic segments and their
membership job: benchmarks/bench_segments_ingest.py.)
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.bench_people import _env, _p, _psql, _setup, run_and_report

DB = os.environ.get("ENCLAVE_BENCH_SEGMENTS_DB", "enclave_bench_segments")
PEOPLE = int(os.environ.get("ENCLAVE_BENCH_SEGMENT_PEOPLE", "1000000"))
EVENTS = int(os.environ.get("ENCLAVE_BENCH_SEGMENT_EVENTS", "10000000"))
REPEATS = int(os.environ.get("ENCLAVE_BENCH_SEGMENT_REPEATS", "20"))
TAGS = 50
COUNT_TARGET_S, RATIO_TARGET, PREVIEW_TARGET_S = 1.0, 1.5, 1.5
RULE = {"type": "group", "match": "all", "rules": [
    {"type": "field", "field": "country", "op": "equals", "value": "GB"},
    {"type": "tag", "tag": "tag8"},
    {"type": "event", "name": "Viewed pricing", "min": 3, "within_days": 30}]}
MASKED_RULE = {"type": "group", "match": "all", "rules": RULE["rules"][1:]}
# What someone fluent in SQL writes by hand for this rule: cheap conditions first, then
# per candidate person "are there 3 such events?" stopping at the third (LIMIT 3).
HAND_SQL = """
SELECT count(*) FROM people_person p
WHERE p.account_id = %(account)s AND p.archived_at IS NULL AND upper(p.country) = 'GB'
  AND EXISTS (SELECT 1 FROM people_persontag pt JOIN people_tag t ON t.id = pt.tag_id
              WHERE pt.person_id = p.id AND t.account_id = %(account)s AND t.name = 'tag8')
  AND (SELECT count(*) FROM (SELECT 1 FROM events_event e
                             WHERE e.person_id = p.id AND e.name = 'Viewed pricing'
                               AND e.occurred_at >= %(since)s
                             LIMIT 3) AS recent) = 3
"""


def run(*, people: int = PEOPLE, events: int = EVENTS, repeats: int = REPEATS,
        db: str = DB) -> dict:
    """Create and migrate ``db``, measure in a worker process, drop ``db``."""
    _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{db}"')
    try:
        with tempfile.TemporaryDirectory() as var:
            env = _env(db, var)
            subprocess.run([sys.executable, "-m", "enclave", "manage", "migrate", "-v0"],
                           env=env, check=True)
            args = json.dumps({"people": people, "events": events, "repeats": repeats})
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_segments",
                                  "worker", args], env=env, capture_output=True, text=True,
                                 check=False)
            if out.returncode:
                raise RuntimeError(f"bench_segments worker failed:\n{out.stderr[-3000:]}")
            return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def report(r: dict) -> None:
    c, pv = r["count"], r["preview"]
    print(f"seeded {r['people']:,} people, {r['events']:,} events, {TAGS} tags in "
          f"{r['seed_s']:.0f} s; the rule matches {c['matches']:,} people")
    ratio = c["p95"] / max(c["sql_p95"], 1e-6)
    print(f"(a) count p50 {c['p50'] * 1000:.0f} ms, p95 {c['p95'] * 1000:.0f} ms (target ≤ "
          f"{COUNT_TARGET_S:.0f} s: {'met' if c['p95'] <= COUNT_TARGET_S else 'MISSED'}); "
          f"hand-written SQL p95 {c['sql_p95'] * 1000:.0f} ms; ratio {ratio:.2f}x (target ≤ "
          f"{RATIO_TARGET}x: {'met' if ratio <= RATIO_TARGET else 'MISSED'})")
    print(f"(b) preview (count + 20 masked) p50 {pv['p50'] * 1000:.0f} ms, p95 "
          f"{pv['p95'] * 1000:.0f} ms (target ≤ {PREVIEW_TARGET_S} s: "
          f"{'met' if pv['p95'] <= PREVIEW_TARGET_S else 'MISSED'})")


def main() -> None:
    run_and_report(run, report)


# --- worker (a subprocess with ENCLAVE_* pointing at the bench database) ---

def _copy(table: str, columns: str, rows) -> None:
    from django.db import connection

    with connection.cursor() as cursor, cursor.connection.cursor() as raw, \
            raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buf = io.StringIO()
        for n, row in enumerate(rows, 1):
            buf.write(row)
            if n % 100_000 == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def _seed(account_id: int, people: int, events: int) -> int:
    """People (every 4th in GB), 50 tags (each person one), events: ``events`` spread
    over the people, a third "Viewed pricing", over the last 60 days. Returns the first
    person id."""
    from django.db import connection

    from enclave.core import clock

    now = clock.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S+00")
    _copy("people_person", "account_id, email, country, custom, row_id, created_at, "
          "updated_at, first_name, last_name, phone, company, address, external_id, "
          "consent", (f"{account_id}\tp{i}@bench.example\t{'GB' if i % 4 == 0 else 'FR'}\t"
                      f"{{}}\t{i:08x}-0000-4000-8000-{account_id:012x}\t{stamp}\t{stamp}\t"
                      f"\t\t\t\t\t\tunknown\n" for i in range(people)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM people_person WHERE account_id = %s",
                       [account_id])
        first = cursor.fetchone()[0]
        cursor.executemany("INSERT INTO people_tag (account_id, name) VALUES (%s, %s)",
                           [(account_id, f"tag{t}") for t in range(TAGS)])
        cursor.execute("SELECT name, id FROM people_tag WHERE account_id = %s", [account_id])
        tag_ids = dict(cursor.fetchall())
    _copy("people_persontag", "person_id, tag_id",
          (f"{first + i}\t{tag_ids[f'tag{i % TAGS}']}\n" for i in range(people)))
    names = ("Viewed pricing", "Opened app", "Read blog")
    _copy("events_event", "account_id, person_id, type, name, properties, message_id, "
          "occurred_at, received_at, key_public_id",
          (f"{account_id}\t{first + (i * 7919) % people}\ttrack\t{names[i % 3]}\t{{}}\t\t"
           f"{_iso(now, i % 60)}\t{stamp}\t\n"
           for i in range(events)))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return first


def _iso(now, days_ago: int) -> str:
    import datetime as dt

    return (now - dt.timedelta(days=days_ago, minutes=days_ago)).strftime(
        "%Y-%m-%d %H:%M:%S+00")


def _principal(account, role_perms):
    from enclave.access.principal import MEMBER, Principal

    return Principal(kind=MEMBER, perms=frozenset(role_perms), account_id=account.pk,
                     account=account)


def worker(args: dict) -> dict:
    _setup()
    import datetime as dt

    from django.db import connection

    from enclave.access.permissions import ROLE_PERMISSIONS, Permission
    from enclave.accounts.models import Account
    from enclave.api import render
    from enclave.audience import access
    from enclave.core import clock
    from enclave.people import access as people_access

    account = Account.objects.create(name="Bench")
    start = time.perf_counter()
    _seed(account.pk, args["people"], args["events"])
    seed_s = time.perf_counter() - start
    owner = _principal(account, ROLE_PERMISSIONS["owner"])
    # May author segments, sees personal data masked (people.read without people.write).
    masked = _principal(account, {Permission.PEOPLE_READ, Permission.SEGMENTS_MANAGE,
                                  Permission.SEGMENTS_READ})
    since = clock.now() - dt.timedelta(days=30)
    counts, sqls, previews, matches = [], [], [], 0
    for _ in range(args["repeats"]):
        t = time.perf_counter()
        matches = access.matching_people(owner, RULE).count()
        counts.append(time.perf_counter() - t)
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL, {"account": account.pk, "since": since})
            assert cursor.fetchone()[0] == matches
        sqls.append(time.perf_counter() - t)
        t = time.perf_counter()
        people = access.matching_people(masked, MASKED_RULE)
        definitions = people_access.field_definitions(account.pk)
        sample = list(people.order_by("pk")[:20])
        tags = render.tags_of(sample)
        rendered = [render.person_json(p, masked.perms, definitions, tags[p.pk])
                    for p in sample]
        people.count()
        previews.append(time.perf_counter() - t)
        assert all("***" in r["email"] for r in rendered)  # the masked role sees masks
    return {"people": args["people"], "events": args["events"], "seed_s": seed_s,
            "count": {"p50": _p(counts, .5), "p95": _p(counts, .95),
                      "sql_p95": _p(sqls, .95), "matches": matches},
            "preview": {"p50": _p(previews, .5), "p95": _p(previews, .95)}}


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    print(json.dumps(worker(json.loads(sys.argv[2]))))
