"""pytest plugin loaded before pytest-django (``-p enclave.testing.plugin`` in addopts).

It points Enclave at a throwaway var/ directory and the test database chosen by
``ENCLAVE_TEST_DB`` (``sqlite``, the default, or ``postgres``) before settings import.
With ``ENCLAVE_TEST_DB=postgres`` only database tests run (each also ran on SQLite), and
an unreachable PostgreSQL skips them — or fails the run when ``ENCLAVE_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from pathlib import Path

import pytest

POSTGRES_HOST = os.environ.get("ENCLAVE_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("ENCLAVE_TEST_PG_PORT", "5432"))
TEST_DB = os.environ.get("ENCLAVE_TEST_DB", "sqlite")
REQUIRE_POSTGRES = os.environ.get("ENCLAVE_REQUIRE_POSTGRES") == "1"

os.environ["ENCLAVE_ENV"] = "test"
os.environ.setdefault("ENCLAVE_VAR_DIR", tempfile.mkdtemp(prefix="enclave-test-"))
# WhiteNoise serves STATIC_ROOT (filled by collectstatic at `enclave serve`); it must exist.
(Path(os.environ["ENCLAVE_VAR_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
for _name in list(os.environ):
    # A developer's own configuration must not leak into the suite.
    if _name.startswith("ENCLAVE_") and _name not in {
        "ENCLAVE_ENV", "ENCLAVE_VAR_DIR", "ENCLAVE_TEST_DB", "ENCLAVE_REQUIRE_POSTGRES",
        "ENCLAVE_TEST_PG_HOST", "ENCLAVE_TEST_PG_PORT", "ENCLAVE_TEST_ARTIFACTS",
    }:
        del os.environ[_name]
if TEST_DB == "postgres":
    os.environ["ENCLAVE_DATABASE_URL"] = (
        f"postgres://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/enclave_{secrets.token_hex(4)}"
    )


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((POSTGRES_HOST, POSTGRES_PORT), timeout=3):
            return True
    except OSError:
        return False


def pytest_report_header(config) -> str:
    return f"enclave: test database = {TEST_DB}, var dir = {os.environ['ENCLAVE_VAR_DIR']}"


def pytest_configure(config) -> None:
    if TEST_DB == "postgres" and not postgres_reachable():
        where = f"{POSTGRES_HOST}:{POSTGRES_PORT}"
        if REQUIRE_POSTGRES:
            raise pytest.UsageError(
                f"ENCLAVE_REQUIRE_POSTGRES=1 but PostgreSQL at {where} is unreachable"
            )
        config._enclave_pg_unreachable = where


def pytest_collection_modifyitems(config, items) -> None:
    if TEST_DB != "postgres":
        return
    keep = [i for i in items if i.get_closest_marker("django_db")]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
    where = getattr(config, "_enclave_pg_unreachable", None)
    if where:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL at {where} is unreachable"))


def pytest_addoption(parser) -> None:
    parser.addoption("--enclave-fail-on-skip", action="store_true",
                     help="fail the run if any test was skipped (CI's PostgreSQL pass)")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if not session.config.getoption("--enclave-fail-on-skip"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"enclave: {skipped} test(s) skipped where none may be; failing",
                            red=True)
        session.exitstatus = 1
