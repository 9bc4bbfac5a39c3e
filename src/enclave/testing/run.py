"""``make test``: the whole suite on SQLite, then every database test on PostgreSQL.

Exit status is non-zero if either pass fails, and — when ``ENCLAVE_REQUIRE_POSTGRES=1``
(as ``.ci/run`` sets) — if the PostgreSQL pass could not run or skipped anything.
"""

from __future__ import annotations

import os
import subprocess
import sys


def _pytest(db: str, extra: list[str]) -> int:
    env = dict(os.environ, ENCLAVE_TEST_DB=db)
    env.pop("ENCLAVE_VAR_DIR", None)
    print(f"\n=== Enclave test suite on {db} ===", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *extra], env=env)  # noqa: S603


def main(argv: list[str]) -> int:
    sqlite = _pytest("sqlite", argv)
    pg_args = list(argv)
    if os.environ.get("ENCLAVE_REQUIRE_POSTGRES") == "1":
        # On CI a skipped PostgreSQL test is a failure, not a pass.
        pg_args += ["--enclave-fail-on-skip"]
    postgres = _pytest("postgres", pg_args)
    print(f"\n=== SQLite pass: {'ok' if sqlite == 0 else f'FAILED ({sqlite})'}; "
          f"PostgreSQL pass: {'ok' if postgres == 0 else f'FAILED ({postgres})'} ===")
    return 0 if sqlite == 0 and postgres == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
