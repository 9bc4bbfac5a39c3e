"""People at scale on PostgreSQL, each figure next to a baseline measured in the same run.

(a) **List p95** — an analyst (personal fields masked) pages through an account of
    ``ENCLAVE_BENCH_PEOPLE`` people (default 1,000,000): ``REQUESTS`` GETs of the real
    ``/app/people/`` view through Django's test client (middleware, session, template
    and all), half searching a company name and following the keyset cursor, half paging
    from a random cursor. Baseline: the same page's two SQL statements (the capped count
    and the keyset page) run raw through psycopg. Target: p95 ≤ 150 ms.
(b) **Export peak memory** — the CSV export generator the export view streams
    (``views.export_rows`` over ``views.filtered_people``, analyst columns) of all N
    people and of N/10 people, each in a fresh interpreter that reports its peak RSS
    (``VmHWM``; ``ru_maxrss`` is printed too, but on Linux it also carries the spawning
    process's peak across fork/exec). Baseline: the same interpreter doing only the
    setup (Django imported and configured). Target: flat (N vs N/10 within a few MB) and ≤ 150 MB.
(c) **Import rows/s** — ``importer.plan_import`` + ``actions.do_import_people`` (what
    the import confirm page runs) of ``ENCLAVE_BENCH_PEOPLE_IMPORT`` new rows (default
    50,000) into an empty account and into the account holding N people. Baseline: COPY
    of the same rows into the same table. Target: ≥ 10,000 rows/s, at most 20 % slower
    into the full account.

The database ``enclave_bench_people`` on 127.0.0.1:5432 is created, migrated, seeded
with COPY and dropped again. ``python -m benchmarks bench_people``; knobs:
``ENCLAVE_BENCH_PEOPLE``, ``ENCLAVE_BENCH_PEOPLE_IMPORT``, ``ENCLAVE_BENCH_PEOPLE_REQUESTS``.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HOST, PORT = os.environ.get("ENCLAVE_TEST_PG_HOST", "127.0.0.1"), "5432"
DB = os.environ.get("ENCLAVE_BENCH_PEOPLE_DB", "enclave_bench_people")
PEOPLE = int(os.environ.get("ENCLAVE_BENCH_PEOPLE", "1000000"))
IMPORT_ROWS = int(os.environ.get("ENCLAVE_BENCH_PEOPLE_IMPORT", "50000"))
REQUESTS = int(os.environ.get("ENCLAVE_BENCH_PEOPLE_REQUESTS", "200"))
COMPANIES = 5000
LIST_TARGET_MS, EXPORT_TARGET_MB, IMPORT_TARGET, FULL_SLOWDOWN = 150, 150, 10_000, 0.20
COPY_COLUMNS = ("account_id", "email", "first_name", "last_name", "phone", "company",
                "address", "country", "external_id", "consent", "custom", "row_id",
                "created_at", "updated_at")


# --- driver (runs in the `python -m benchmarks` process; no Django here) ---

def _psql(sql: str) -> None:
    subprocess.run(["psql", "-q", "-h", HOST, "-p", PORT, "-U", "postgres", "-d", "postgres",
                    "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


def _env(db: str, var: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_ENV": "dev", "ENCLAVE_VAR_DIR": var,
                "ENCLAVE_DATABASE_URL": f"postgres://postgres@{HOST}:{PORT}/{db}"})
    return env


def run(*, people: int = PEOPLE, import_rows: int = IMPORT_ROWS, requests: int = REQUESTS,
        db: str = DB) -> dict:
    """Create and migrate ``db``, run every measurement in a worker process, drop ``db``.

    Returns the worker's figures. Raises CalledProcessError when a step fails and
    FileNotFoundError when psql is missing."""
    _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{db}"')
    try:
        with tempfile.TemporaryDirectory() as var:
            env = _env(db, var)
            subprocess.run([sys.executable, "-m", "enclave", "manage", "migrate", "-v0"],
                           env=env, check=True)
            args = json.dumps({"people": people, "import_rows": import_rows,
                               "requests": requests})
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_people", "worker",
                                  args], env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                raise RuntimeError(f"bench_people worker failed:\n{out.stderr[-3000:]}")
            return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def report(r: dict) -> None:
    n = r["people"]
    lst = r["list"]
    print(f"(a) people list, analyst, {n:,} people, {lst['requests']} requests "
          "(Django test client through the real view):")
    met = "met" if lst["view_p95"] <= LIST_TARGET_MS else "MISSED"
    print(f"    view p50 {lst['view_p50']:.1f} ms, p95 {lst['view_p95']:.1f} ms "
          f"(target ≤ {LIST_TARGET_MS} ms: {met})")
    print(f"    raw SQL of the same page p50 {lst['sql_p50']:.1f} ms, p95 {lst['sql_p95']:.1f} ms;"
          f" ratio p95 {lst['view_p95'] / max(lst['sql_p95'], 0.001):.1f}x")
    ex = r["export"]
    small, big, base = ex["small_mb"], ex["big_mb"], ex["baseline_mb"]
    print(f"(b) CSV export peak RSS: {ex['small_rows']:,} people {small:.1f} MB, "
          f"{ex['big_rows']:,} people {big:.1f} MB (difference {big - small:+.1f} MB); "
          f"setup-only baseline {base:.1f} MB (export adds {big - base:.1f} MB); "
          f"target ≤ {EXPORT_TARGET_MB} MB: {'met' if big <= EXPORT_TARGET_MB else 'MISSED'}; "
          f"{ex['big_rows'] / ex['big_seconds']:,.0f} rows/s")
    print("    (peak RSS = VmHWM of each fresh export process; its ru_maxrss, which also "
          "holds the spawning process's peak: "
          + ", ".join(f"{mb:.1f}" for mb in ex["ru_maxrss_mb"]) + " MB)")
    im = r["import"]
    for label in ("empty", "full"):
        rate, copy = im[f"{label}_rows_s"], im[f"{label}_copy_rows_s"]
        print(f"(c) import {im['rows']:,} rows into the {label} account: {rate:,.0f} rows/s "
              f"(plan {im[f'{label}_plan_s']:.2f} s + write {im[f'{label}_write_s']:.2f} s); "
              f"COPY baseline {copy:,.0f} rows/s; ratio {copy / rate:.1f}x")
    slower = 1 - im["full_rows_s"] / im["empty_rows_s"]
    print(f"    full vs empty: {abs(slower):.0%} {'slower' if slower > 0 else 'faster'} "
          f"(target: at most {FULL_SLOWDOWN:.0%} slower); "
          f"target ≥ {IMPORT_TARGET:,} rows/s: "
          f"{'met' if min(im['empty_rows_s'], im['full_rows_s']) >= IMPORT_TARGET else 'MISSED'}")


def run_and_report(run, report) -> None:
    """A benchmark's ``main``: ``report(run())``, or one line when PostgreSQL is not
    there."""
    try:
        results = run()
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"PostgreSQL at {HOST}:{PORT} unavailable; skipped ({exc})")
        return
    report(results)


def run_step(module: str, env: dict, name: str, args: dict) -> dict:
    """Run step ``name`` of ``benchmarks.<module>`` (``python -m benchmarks.<module> name
    '<json args>'``) in a subprocess with ``env``; the JSON it printed last."""
    out = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", name,
                          json.dumps(args)], env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise RuntimeError(f"{module} {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ask_count(helper) -> int:
    """Send ``count`` to a helper process (a sink or receiver reading stdin) and read the
    number it answers."""
    helper.stdin.write("count\n")
    helper.stdin.flush()
    return int(helper.stdout.readline())


def main() -> None:
    run_and_report(run, report)


# --- worker (a subprocess with ENCLAVE_* pointing at the bench database) ---

def _setup() -> None:
    from enclave.cli import _setup_django

    _setup_django()


def _seed_copy(account_id: int, start: int, count: int, prefix: str) -> None:
    """COPY ``count`` people into ``account_id`` (distinct emails/ids from ``start``)."""
    from django.db import connection

    now = "2026-01-01 00:00:00+00"
    columns = ", ".join(COPY_COLUMNS)
    with connection.cursor() as cursor, cursor.connection.cursor() as raw, \
            raw.copy(f"COPY people_person ({columns}) FROM STDIN") as copy:
        for base in range(start, start + count, 50_000):
            buf = io.StringIO()
            for i in range(base, min(base + 50_000, start + count)):
                buf.write(f"{account_id}\t{prefix}{i}@mail{i % 97}.example\tFirst{i % 1000}\t"
                          f"Last{i % 3000}\t+44 20 {i % 10_000_000:07d}\t"
                          f"Company {i % COMPANIES}\t{i} Long Road\tGB\t{prefix}-{i}\t"
                          f"unknown\t{{}}\t{i:08x}-0000-4000-8000-{account_id:012x}\t"
                          f"{now}\t{now}\n")
            copy.write(buf.getvalue())


def _world(people: int) -> dict:
    from django.db import connection

    from enclave.accounts.models import Account, Membership
    from enclave.identity.models import Member

    big, small = Account.objects.create(name="Big"), Account.objects.create(name="Small")
    member = Member(email="analyst@bench.example")
    member.set_unusable_password()
    member.save()
    Membership.objects.create(member=member, account=big, role="analyst")
    # The list client's session opens the member's account: one account per analyst.
    other = Member(email="analyst2@bench.example")
    other.set_unusable_password()
    other.save()
    Membership.objects.create(member=other, account=small, role="analyst")
    writer = Member(email="user@bench.example")
    writer.set_unusable_password()
    writer.save()
    start = time.perf_counter()
    with connection.cursor() as cursor:
        # Seeding only: load without the search indexes, then build them in one pass.
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'people_person' "
                       "AND indexname LIKE '%%_prefix'")
        search_indexes = [row[0] for row in cursor.fetchall()]
        for definition in search_indexes:
            cursor.execute(f"DROP INDEX {definition.split()[2]}")
    _seed_copy(big.pk, 0, people, "p")
    _seed_copy(small.pk, 0, max(people // 10, 1), "s")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for definition in search_indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE people_person")
    seed_s = time.perf_counter() - start
    return {"big": big, "small": small, "analyst": member, "analyst2": other,
            "writer": writer,
            "seed_s": seed_s}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_list(world: dict, requests: int) -> dict:
    """(a): the real list view through the test client vs the raw SQL of the page."""
    import re

    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(world["analyst"])
    account = world["big"]
    ids = list(account.people.order_by("pk").values_list("pk", flat=True)[::997])
    rng = random.Random(5)  # noqa: S311 — picks test pages, not secrets
    urls, sqls = [], []
    for i in range(requests):
        if i % 2:
            urls.append(("/app/people/", {"q": f"Company {rng.randrange(COMPANIES)}"}))
        else:
            from enclave.people.views import _encode_cursor

            urls.append(("/app/people/", {"after": _encode_cursor(rng.choice(ids),
                                                                  rng.choice(ids))}))
    view_ms, sql_ms = [], []
    client.get(*urls[0], secure=True)  # warm caches and the session
    for url, params in urls:
        start = time.perf_counter()
        response = client.get(url, params, secure=True)
        view_ms.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
        if "q" in params:
            # Follow the cursor the page offers (the keyset half of a search).
            link = re.search(r'<a href="\?([^"]+)" rel="next">', response.text)
            sqls.append(("q", params["q"], None))
            if link:
                from urllib.parse import parse_qs

                after = parse_qs(link[1].replace("&amp;", "&"))["after"][0]
                start = time.perf_counter()
                client.get(url, {"q": params["q"], "after": after}, secure=True)
                view_ms.append((time.perf_counter() - start) * 1000)
                sqls.append(("q", params["q"], after))
        else:
            sqls.append(("after", None, params["after"]))
    raw = connection.connection
    for _kind, q, after in sqls:
        start = time.perf_counter()
        _raw_page(raw, account.pk, q, after)
        sql_ms.append((time.perf_counter() - start) * 1000)
    return {"requests": len(view_ms), "view_p50": statistics.median(view_ms),
            "view_p95": _p(view_ms, 0.95), "sql_p50": statistics.median(sql_ms),
            "sql_p95": _p(sql_ms, 0.95)}


def _raw_page(raw, account_id: int, q: str | None, after: str | None) -> None:
    """The list page as plain SQL: capped count + keyset page of the analyst's columns."""
    from enclave.people.views import COUNT_CAP, PAGE_SIZE, _decode_cursor

    where, params = "account_id = %s AND archived_at IS NULL", [account_id]
    if q:
        where += (" AND (upper(company::text) LIKE %s OR upper(country::text) LIKE %s OR "
                  "upper(external_id::text) LIKE %s OR upper(consent::text) LIKE %s)")
        params += [f"{q.upper()}%"] * 4
    with raw.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM people_person WHERE {where} "  # noqa: S608 — constant SQL
                       f"LIMIT {COUNT_CAP + 1}) t", params)
        cursor.fetchall()
        if after:
            where += " AND id > %s"
            params.append(_decode_cursor(after)[1])
        cursor.execute(f"SELECT id, email, first_name, last_name, company, country "  # noqa: S608
                       f"FROM people_person WHERE {where} ORDER BY id LIMIT {PAGE_SIZE + 1}",
                       params)
        cursor.fetchall()


EXPORT_CHILD = """
import json, resource, sys, time
from benchmarks.bench_people import _setup
_setup()
account_id, member_id, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rows, start = 0, time.perf_counter()
if mode == "export":
    from enclave.accounts.access import principal_for
    from enclave.identity.models import Member
    from enclave.people import access, views
    ctx = principal_for(Member.objects.get(pk=member_id), account_id)
    definitions = access.field_definitions(account_id)
    columns = views._columns(ctx, "", definitions)
    with open("/dev/null", "w", encoding="utf-8") as sink:
        for line in views.export_rows(ctx, views.filtered_people(ctx, {}, definitions),
                                      columns, definitions):
            sink.write(line)
            rows += 1
# VmHWM: this process's own peak RSS. ru_maxrss also carries the spawning process's
# peak across fork/exec on Linux, so it is reported but not used for the verdict.
with open("/proc/self/status", encoding="ascii") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"hwm_kb": hwm,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": rows - 1, "seconds": time.perf_counter() - start}))
"""


def _export_child(account_id: int, member_id: int, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", EXPORT_CHILD, str(account_id), str(member_id),
                          mode], check=True, capture_output=True, text=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_export(world: dict) -> dict:
    """(b): peak RSS of exporting N and N/10 people, each in a fresh interpreter."""
    base = _export_child(world["small"].pk, world["analyst2"].pk, "setup")
    small = _export_child(world["small"].pk, world["analyst2"].pk, "export")
    big = _export_child(world["big"].pk, world["analyst"].pk, "export")
    return {"baseline_mb": base["hwm_kb"] / 1024, "small_mb": small["hwm_kb"] / 1024,
            "big_mb": big["hwm_kb"] / 1024, "small_rows": small["rows"],
            "big_rows": big["rows"], "big_seconds": big["seconds"],
            "ru_maxrss_mb": [x["maxrss_kb"] / 1024 for x in (base, small, big)]}


def _import_csv(prefix: str, rows: int) -> bytes:
    lines = ["email,first_name,last_name,company,country,external_id"]
    lines += [f"{prefix}{i}@import.example,Ann{i % 50},Lee{i % 70},Company {i % COMPANIES},"
              f"FR,{prefix}-{i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _copy_baseline(account_id: int, data: bytes) -> float:
    """COPY the same rows (CSV, header skipped) into people_person; rolled back."""
    from django.db import connection, transaction

    now = "2026-01-01 00:00:00+00"
    start = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor, cursor.connection.cursor() as raw, raw.copy(
                "COPY people_person (account_id, email, first_name, last_name, company, "
                "country, external_id, consent, custom, row_id, created_at, updated_at, "
                "phone, address) "
                "FROM STDIN") as copy:
            buf = io.StringIO()
            for n, line in enumerate(data.decode().splitlines()[1:]):
                email, first, last, company, country, ext = line.split(",")
                buf.write(f"{account_id}\t{email.lower()}\t{first}\t{last}\t{company}\t"
                          f"{country}\t{ext}\tunknown\t{{}}\t"
                          f"{n:08x}-1111-4000-8000-{account_id:012x}\t{now}\t{now}\t\t\n")
            copy.write(buf.getvalue())
        elapsed = time.perf_counter() - start
        transaction.set_rollback(True)
    return elapsed


def _import_once(account, writer, data: bytes) -> tuple[float, float]:
    from enclave.accounts.models import Membership
    from enclave.people import actions, importer

    Membership.objects.get_or_create(member=writer, account=account,
                                     defaults={"role": "user"})
    start = time.perf_counter()
    from enclave.accounts.access import principal_for

    actor = principal_for(writer, account.pk)
    plan = importer.plan_import(data, account.pk, actor.perms)
    planned = time.perf_counter()
    actions.do_import_people(account, plan, actor=actor)
    return planned - start, time.perf_counter() - planned


def bench_import(world: dict, rows: int) -> dict:
    """(c): plan + bulk write of ``rows`` new people, empty vs full account, vs COPY."""
    from django.db import connection

    from enclave.accounts.models import Account

    out: dict = {"rows": rows}
    # Warm-up (not measured): the first import of the process pays one-off costs.
    _import_once(Account.objects.create(name="Warm-up"), world["writer"],
                 _import_csv("warm-", 200))
    empty = Account.objects.create(name="Empty")
    for label, account in (("empty", empty), ("full", world["big"])):
        data = _import_csv(f"{label}-", rows)
        copy_s = _copy_baseline(account.pk, data)
        with connection.cursor() as cursor:
            # The rolled-back COPY left dead rows and index entries: clear them first.
            cursor.execute("VACUUM people_person")
        plan_s, write_s = _import_once(account, world["writer"], data)
        out.update({f"{label}_plan_s": plan_s, f"{label}_write_s": write_s,
                    f"{label}_rows_s": rows / (plan_s + write_s),
                    f"{label}_copy_rows_s": rows / copy_s})
    return out


def worker(args: dict) -> dict:
    _setup()
    world = _world(args["people"])
    return {"people": args["people"], "seed_s": world["seed_s"],
            "list": bench_list(world, args["requests"]),
            "export": bench_export(world),
            "import": bench_import(world, args["import_rows"])}


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        result = worker(json.loads(sys.argv[2]))
        sys.stdout.flush()
        print(json.dumps(result))
    else:
        main()
