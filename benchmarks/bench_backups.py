"""Encrypted backup time against raw ``pg_dump --format=custom`` of the same ~100 MB
PostgreSQL database to /dev/null, and the backup process's peak memory.

Target: ratio at most 1.15. The encrypted backup also reads the stored backup back and
verifies it before committing the manifest (docs/operations.md), and pays the ``enclave``
process start-up; both are included, so the number is what an operator waits for.
"""

from __future__ import annotations

import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST, PORT = os.environ.get("ENCLAVE_TEST_PG_HOST", "127.0.0.1"), "5432"
MEGABYTES = 100
ROUNDS = 2
TARGET = 1.15


def _psql(db: str, sql: str) -> None:
    subprocess.run(["psql", "-q", "-h", HOST, "-p", PORT, "-U", "postgres", "-d", db,
                    "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


def _timed(cmd: list[str], env: dict, stdout) -> tuple[float, int]:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, check=True)
    elapsed = time.perf_counter() - start
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main() -> None:
    name = f"enclave_bench_{secrets.token_hex(4)}"
    try:
        _psql("postgres", f"CREATE DATABASE {name}")
    except (subprocess.CalledProcessError, FileNotFoundError):
        print(f"PostgreSQL unreachable at {HOST}:{PORT}; skipped")
        return
    try:
        with tempfile.TemporaryDirectory() as var:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
            env.update({"ENCLAVE_ENV": "dev", "ENCLAVE_VAR_DIR": var,
                        "ENCLAVE_DATABASE_URL": f"postgres://postgres@{HOST}:{PORT}/{name}"})
            enclave = [sys.executable, "-m", "enclave"]
            subprocess.run([*enclave, "manage", "migrate", "-v0"], env=env, check=True)
            rows = MEGABYTES * 64  # 16 KiB of random bytes per row
            _psql(name, "CREATE TABLE bench_blob (b bytea); INSERT INTO bench_blob "  # noqa: S608 — integers only
                        "SELECT decode(string_agg(md5(random()::text), ''), 'hex') "
                        f"FROM generate_series(1, {rows * 1024}) g GROUP BY g % {rows}")
            with Path(os.devnull).open("wb") as null:
                raw = min(_timed(["pg_dump", "--format=custom", "-h", HOST, "-p", PORT,
                                  "-U", "postgres", name], env, null)[0]
                          for _ in range(ROUNDS))
                results = [_timed([*enclave, "backup", "create"], env, null)
                           for _ in range(ROUNDS)]
            encrypted = min(r[0] for r in results)
            peak_mb = max(r[1] for r in results) / 1024
    finally:
        _psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    ratio = encrypted / raw
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"raw pg_dump to /dev/null:          {raw:6.2f} s ({MEGABYTES} MB of table data)")
    print(f"enclave backup create (encrypted): {encrypted:6.2f} s")
    print(f"ratio:                             {ratio:6.2f} ({verdict} the {TARGET} target)")
    print(f"peak RSS of child processes:       {peak_mb:6.0f} MB")


if __name__ == "__main__":
    main()
