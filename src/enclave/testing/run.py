"""``make test``: the whole suite on SQLite and, alongside it, every database test on
PostgreSQL.

The two passes run at the same time (two pytest processes; each has its own var
directory and its own PostgreSQL database, so they share nothing): on a 2-core runner
the PostgreSQL pass then costs little wall time. Tests marked ``postgresql_pass`` (long
ones that need no database of the test process, such as the contract test against a
live server) run in the PostgreSQL pass instead of the SQLite pass, so the two end at
about the same time. Its output goes to
``test-artifacts/postgresql-pass.log`` and is printed whole once the SQLite pass ends, so
the two never interleave. ``ENCLAVE_TEST_PASSES=one-by-one`` runs them one after the
other, printing as they go.

Exit status is non-zero if either pass fails, and — when ``ENCLAVE_REQUIRE_POSTGRES=1``
(as ``.ci/run`` sets) — if the PostgreSQL pass could not run or skipped anything, or the
SQLite pass skipped a test that runs only there (one without ``django_db``).

Order: tests run in a random order (pytest-randomly), and both passes use one seed,
chosen here and printed first and last, so a failure in either pass reproduces with
``make test ARGS="--randomly-seed=N"`` — or, for one file,
``.venv/bin/pytest --randomly-seed=N tests/...``. pytest-randomly also reseeds
``random`` with that seed before each test. ``ARGS="-p no:randomly"`` runs in file order.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

SEED_OPTION = "--randomly-seed"
TOGETHER, ONE_BY_ONE = "together", "one-by-one"


def _command(db: str, extra: list[str]) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ, ENCLAVE_TEST_DB=db)
    env.pop("ENCLAVE_VAR_DIR", None)
    return [sys.executable, "-m", "pytest", *extra], env


def _pytest(db: str, extra: list[str]) -> int:
    argv, env = _command(db, extra)
    print(f"\n=== Enclave test suite on {db} ===", flush=True)
    return subprocess.call(argv, env=env)  # noqa: S603


def _passes(sqlite_args: list[str], pg_args: list[str]) -> tuple[int, int]:
    """Both passes' exit statuses: the PostgreSQL pass in the background (its output
    to a log file, printed after the SQLite pass), unless asked for one by one."""
    mode = os.environ.get("ENCLAVE_TEST_PASSES", TOGETHER)
    if mode not in (TOGETHER, ONE_BY_ONE):
        print(f"ENCLAVE_TEST_PASSES must be {TOGETHER} or {ONE_BY_ONE}, not {mode!r}",
              file=sys.stderr)
        return 2, 2
    if mode == ONE_BY_ONE:
        return _pytest("sqlite", sqlite_args), _pytest("postgres", pg_args)
    artifacts = Path(os.environ.get("ENCLAVE_TEST_ARTIFACTS", "test-artifacts")).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = artifacts / "postgresql-pass.log"
    argv, env = _command("postgres", pg_args)
    print(f"=== the PostgreSQL pass runs alongside; its output follows the SQLite pass "
          f"(and is kept in {log_path}) ===", flush=True)
    with log_path.open("wb") as log:
        background = subprocess.Popen(argv, env=env, stdout=log,  # noqa: S603
                                      stderr=subprocess.STDOUT)
        try:
            sqlite = _pytest("sqlite", sqlite_args)
            postgres = background.wait()
        finally:
            if background.poll() is None:  # interrupted: leave nothing running
                background.terminate()
                background.wait()
    print("\n=== Enclave test suite on postgres (run alongside) ===", flush=True)
    sys.stdout.buffer.write(log_path.read_bytes())
    sys.stdout.flush()
    return sqlite, postgres


def _order_args(argv: list[str]) -> tuple[list[str], str | None]:
    """The arguments that fix the order of both passes, and the seed they use (None when
    the caller turned random order off)."""
    if "no:randomly" in argv or "-pno:randomly" in argv:
        return [], None
    for i, arg in enumerate(argv):
        if arg.startswith(SEED_OPTION + "="):
            return [], arg.split("=", 1)[1]
        if arg == SEED_OPTION and i + 1 < len(argv):
            return [], argv[i + 1]
    seed = str(secrets.randbelow(2**32))
    return [f"{SEED_OPTION}={seed}"], seed


def main(argv: list[str]) -> int:
    order, seed = _order_args(argv)
    if seed is None:
        print("=== test order: file order (random order turned off) ===", flush=True)
    else:
        print(f"=== test order: random, seed {seed} (both passes; reproduce with "
              f'make test ARGS="{SEED_OPTION}={seed}") ===', flush=True)
    sqlite_args, pg_args = [*order, "--enclave-balance", *argv], [*order, *argv]
    if os.environ.get("ENCLAVE_REQUIRE_POSTGRES") == "1":
        # On CI (which installs every tool the suite drives) a skipped test is a failure,
        # not a pass: any skip in the PostgreSQL pass, and in the SQLite pass a test that
        # runs only there (no django_db; a database test skipped on SQLite runs again on
        # PostgreSQL).
        sqlite_args += ["--enclave-fail-on-skip-outside-db"]
        pg_args += ["--enclave-fail-on-skip"]
    sqlite, postgres = _passes(sqlite_args, pg_args)
    verdict = (f"\n=== SQLite pass: {'ok' if sqlite == 0 else f'FAILED ({sqlite})'}; "
               f"PostgreSQL pass: {'ok' if postgres == 0 else f'FAILED ({postgres})'}")
    if seed is not None:
        verdict += f"; order seed {seed}"
    print(verdict + " ===")
    return 0 if sqlite == 0 and postgres == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
