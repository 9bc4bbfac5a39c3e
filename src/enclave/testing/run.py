"""``make test``: the whole suite on SQLite, then every database test on PostgreSQL.

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

SEED_OPTION = "--randomly-seed"


def _pytest(db: str, extra: list[str]) -> int:
    env = dict(os.environ, ENCLAVE_TEST_DB=db)
    env.pop("ENCLAVE_VAR_DIR", None)
    print(f"\n=== Enclave test suite on {db} ===", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *extra], env=env)  # noqa: S603


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
    sqlite_args, pg_args = [*order, *argv], [*order, *argv]
    if os.environ.get("ENCLAVE_REQUIRE_POSTGRES") == "1":
        # On CI (which installs every tool the suite drives) a skipped test is a failure,
        # not a pass: any skip in the PostgreSQL pass, and in the SQLite pass a test that
        # runs only there (no django_db; a database test skipped on SQLite runs again on
        # PostgreSQL).
        sqlite_args += ["--enclave-fail-on-skip-outside-db"]
        pg_args += ["--enclave-fail-on-skip"]
    sqlite = _pytest("sqlite", sqlite_args)
    postgres = _pytest("postgres", pg_args)
    verdict = (f"\n=== SQLite pass: {'ok' if sqlite == 0 else f'FAILED ({sqlite})'}; "
               f"PostgreSQL pass: {'ok' if postgres == 0 else f'FAILED ({postgres})'}")
    if seed is not None:
        verdict += f"; order seed {seed}"
    print(verdict + " ===")
    return 0 if sqlite == 0 and postgres == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
