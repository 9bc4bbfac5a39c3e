"""Authenticated ``GET /api/v1/people/{id}`` p50 against a bare Django view returning the
same JSON, both served by the same ``enclave serve`` (gunicorn gthread over HTTPS) on
PostgreSQL, measured in the same run. Target: ratio at most 1.15.

The bare view (``enclave.api.views.bench_bare_person``) is routed only in this
benchmark's server (``ENCLAVE_API_BENCH_VIEW=1``, refused in live environments). It reads
the row and its tags and returns the same fields — no key check, no DRF, no formatter.
The API request pays for: key lookup + HMAC, scope/permission checks, rate limiting, the
tenant-scoped access function, custom-field definitions and the visibility formatter.

Requests alternate API / bare over one keep-alive connection each, on random people of a
table of ``ENCLAVE_BENCH_API_PEOPLE`` rows (default 100 000), ``ENCLAVE_BENCH_API_REQUESTS``
pairs (default 3000).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST, PORT = os.environ.get("ENCLAVE_TEST_PG_HOST", "127.0.0.1"), "5432"
PEOPLE = int(os.environ.get("ENCLAVE_BENCH_API_PEOPLE", "100000"))
REQUESTS = int(os.environ.get("ENCLAVE_BENCH_API_REQUESTS", "3000"))
TARGET = 1.15
ROOT = Path(__file__).resolve().parents[1]
RATES = "api.key=10000000/min,api.ip=10000000/min"
# name -> (connection, path or prefix, sends the key). "health" (DRF, no key, one query)
# and "account" (key check only, no person) split the API's cost for the report.
PATHS = {"api": ("api", "/api/v1/people/", True), "bare": ("bare", "/api/bench/people/", False),
         "health": ("bare", "/api/v1/health", False), "account": ("api", "/api/v1/account", True)}


def seed(people: int) -> tuple[str, int, int]:
    """In the server's environment: an account, its owner, ``people`` people (bulk) with
    tags and two custom fields; returns (token, first person id, last person id)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enclave.settings")
    import django

    django.setup()
    from django.db import transaction

    from enclave.accounts.access import principal_for
    from enclave.accounts.models import Account, Membership
    from enclave.apikeys.actions import do_create_api_key
    from enclave.identity.models import Member
    from enclave.people.actions import do_define_field
    from enclave.people.models import Person, PersonTag, Tag

    with transaction.atomic():
        account = Account.objects.create(name="Bench")
        owner = Member(email="owner@bench.example")
        owner.set_unusable_password()
        owner.save()
        Membership.objects.create(member=owner, account=account, role="owner")
    owner = principal_for(owner, account.pk)
    do_define_field(account, "tier", "Tier", "select", options=["gold", "silver"],
                    pd_class="none", actor=owner)
    do_define_field(account, "score", "Score", "number", actor=owner)
    tags = [Tag.objects.create(account=account, name=n) for n in ("lead", "customer", "vip")]
    for start in range(0, people, 5000):
        rows = Person.objects.bulk_create(
            Person(account=account, email=f"person{i}@bench.example", first_name=f"First{i}",
                   last_name=f"Last{i}", phone=f"+44 20 7946 {i % 10000:04d}",
                   company=f"Company {i % 500}", country="GB", external_id=f"crm-{i}",
                   custom={"tier": "gold" if i % 2 else "silver", "score": i % 100})
            for i in range(start, min(people, start + 5000)))
        PersonTag.objects.bulk_create(PersonTag(person=p, tag=tags[p.pk % 3]) for p in rows)
    with transaction.atomic():
        token, _ = do_create_api_key(account, name="bench", scopes=["people:read", "account:read"],
                                     role_ceiling="owner", actor=owner)
    ids = Person.objects.filter(account=account).order_by("pk").values_list("pk", flat=True)
    return token, ids.first(), ids.last()


def _get(conn: http.client.HTTPSConnection, path: str, headers: dict) -> tuple[float, bytes]:
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return elapsed, body


def measure(people: int = PEOPLE, requests: int = REQUESTS,
            database_url: str | None = None) -> dict:
    """Start a server, seed it, time ``requests`` alternating pairs; p50s in ms."""
    from enclave.testing.live import run_enclave

    extra = {"ENCLAVE_API_BENCH_VIEW": "1", "ENCLAVE_API_RATES": RATES}
    if database_url:
        extra["ENCLAVE_DATABASE_URL"] = database_url
    with tempfile.TemporaryDirectory() as tmp, \
            run_enclave(Path(tmp) / "var", timeout=120, **extra) as live:
        seeded = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_api", "seed", str(people)], cwd=ROOT,
            env={**live.env, **extra}, capture_output=True, text=True, check=False,
            timeout=1800)
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{seeded.stderr[-3000:]}")
        out = seeded.stdout.split()
        token, first, last = out[-3], int(out[-2]), int(out[-1])
        context = ssl.create_default_context(cafile=str(live.ca_file))
        api = http.client.HTTPSConnection("localhost", live.https_port, context=context)
        bare = http.client.HTTPSConnection("localhost", live.https_port, context=context)
        auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        rng = random.Random(20261125)  # noqa: S311 — sampling ids, not security
        _, api_body = _get(api, f"/api/v1/people/{first}", auth)
        _, bare_body = _get(bare, f"/api/bench/people/{first}", {})
        for _ in range(min(100, requests)):  # warm both paths (connections, caches)
            person = rng.randint(first, last)
            _get(api, f"/api/v1/people/{person}", auth)
            _get(bare, f"/api/bench/people/{person}", {})
        times: dict[str, list[float]] = {name: [] for name in PATHS}
        for i in range(requests):
            person = str(rng.randint(first, last))
            order = list(PATHS) if i % 2 else list(PATHS)[::-1]
            for name in order:  # alternate the order: neither side always goes first
                conn, prefix, keyed = PATHS[name]
                conn = api if conn == "api" else bare
                path = prefix + person if prefix.endswith("/") else prefix
                times[name].append(_get(conn, path, auth if keyed else {})[0])
        api.close()
        bare.close()
    p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
    api_p50, bare_p50 = p50["api"], p50["bare"]
    return {"api_p50_ms": api_p50, "bare_p50_ms": bare_p50, "ratio": api_p50 / bare_p50,
            "health_p50_ms": p50["health"], "account_p50_ms": p50["account"],
            "same_fields": set(json.loads(api_body)) == set(json.loads(bare_body)),
            "people": people, "requests": requests}


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-q", "-h", HOST, "-p", PORT, "-U", "postgres", "-d", "postgres",
                    "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


def main() -> None:
    name = f"enclave_bench_api_{secrets.token_hex(4)}"
    try:
        _psql(f"CREATE DATABASE {name}")
    except (subprocess.CalledProcessError, FileNotFoundError):
        print(f"PostgreSQL unreachable at {HOST}:{PORT}; skipped")
        return
    try:
        result = measure(database_url=f"postgres://postgres@{HOST}:{PORT}/{name}")
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    verdict = "within" if result["ratio"] <= TARGET else "OVER"
    print(f"people in the table:                 {result['people']:>9}")
    print(f"request pairs:                       {result['requests']:>9}")
    print(f"bare Django view p50:                {result['bare_p50_ms']:9.3f} ms")
    print(f"GET /api/v1/people/{{id}} p50:        {result['api_p50_ms']:9.3f} ms")
    print(f"  (breakdown) GET /api/v1/health p50: {result['health_p50_ms']:9.3f} ms "
          "(DRF view, no key, one query)")
    print(f"  (breakdown) GET /api/v1/account p50:{result['account_p50_ms']:9.3f} ms "
          "(key check, no person)")
    print(f"ratio:                               {result['ratio']:9.3f} "
          f"({verdict} the {TARGET} target)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        print(*seed(int(sys.argv[2])))
    else:
        main()
