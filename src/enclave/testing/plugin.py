"""pytest plugin loaded before pytest-django (``-p enclave.testing.plugin`` in addopts).

It points Enclave at a throwaway var/ directory and the test database chosen by
``ENCLAVE_TEST_DB`` (``sqlite``, the default, or ``postgres``) before settings import.
With ``ENCLAVE_TEST_DB=postgres`` only database tests run (each also ran on SQLite), and
an unreachable PostgreSQL skips them — or fails the run when ``ENCLAVE_REQUIRE_POSTGRES=1``.

Password hashing: most tests hash a password only to set up a member or sign in, and
argon2id at the production cost (``enclave.settings.ARGON2_PARAMETERS``, ~0.1 s a hash)
made that a large share of the suite. The suite therefore hashes with argon2id at the
smallest cost argon2 allows (:data:`FAST_ARGON2_PARAMETERS`): the same hasher, format
and upgrade-at-login path, only cheaper. A test about hashing itself (stored format,
upgrade, timing, control AUTH-1) carries ``@pytest.mark.real_password_hashing`` and runs
with the production parameters. Only this plugin lowers the cost; production settings
never do, and control AUTH-1 fails under the fast parameters (tests/testing/
test_plugin.py), so a deployment with them could not report a pass.
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
        if config.getoption("--enclave-balance"):
            # ``make test``: these run in the PostgreSQL pass, beside this one.
            moved = [i for i in items if i.get_closest_marker("postgresql_pass")]
            config.hook.pytest_deselected(items=moved)
            items[:] = [i for i in items if i not in moved]
        return
    keep = [i for i in items if i.get_closest_marker("django_db")
            or i.get_closest_marker("postgresql_pass")]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
    where = getattr(config, "_enclave_pg_unreachable", None)
    if where:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL at {where} is unreachable"))


# argon2's minimum: 1 pass over 8 KiB, one lane.
FAST_ARGON2_PARAMETERS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> None:
    """Hash with :data:`FAST_ARGON2_PARAMETERS` for the whole session (see module doc)."""
    from django.conf import settings

    settings.ARGON2_PARAMETERS = dict(FAST_ARGON2_PARAMETERS)


@pytest.fixture(autouse=True)
def _real_password_hashing(request):
    """Production argon2id parameters for tests marked ``real_password_hashing``."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        yield
        return
    from django.test import override_settings

    from enclave import settings as production

    with override_settings(ARGON2_PARAMETERS=dict(production.ARGON2_PARAMETERS)):
        yield


def pytest_addoption(parser) -> None:
    parser.addoption("--enclave-fail-on-skip", action="store_true",
                     help="fail the run if any test was skipped (CI's PostgreSQL pass)")
    parser.addoption("--enclave-balance", action="store_true",
                     help="leave the tests marked postgresql_pass to the PostgreSQL pass "
                          "(make test runs the two passes side by side)")
    parser.addoption("--enclave-fail-on-skip-outside-db", action="store_true",
                     help="fail the run if a test without django_db was skipped (CI's SQLite "
                          "pass: such a test runs only there, so its skip hides it; a "
                          "database test skipped on SQLite runs again on PostgreSQL)")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    every = session.config.getoption("--enclave-fail-on-skip")
    outside_db = session.config.getoption("--enclave-fail-on-skip-outside-db")
    if not (every or outside_db):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reports = reporter.stats.get("skipped", []) if reporter else []
    if not every:
        reports = [r for r in reports if "django_db" not in getattr(r, "keywords", {})]
    if reports and session.exitstatus == 0:
        for report in reports:
            reporter.write_line(f"enclave: skipped: {report.nodeid}", red=True)
        reporter.write_line(f"enclave: {len(reports)} test(s) skipped where none may be; "
                            "failing", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _no_leaked_database_connection(request, django_db_blocker):
    """PostgreSQL pass: a database test that leaves another connection open to the test
    database fails, naming it. Otherwise the leak surfaces later and elsewhere: a
    ResourceWarning in whichever test the garbage collector happens to run, or a test
    database that cannot be dropped at the end of the session."""
    yield
    if TEST_DB != "postgres" or request.node.get_closest_marker("django_db") is None:
        return
    import time

    from django.db import connection

    query = ("SELECT application_name, state, left(query, 120) FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid() "
             "AND backend_type = 'client backend'")
    deadline = time.monotonic() + 5  # a thread still finishing closes its own
    while True:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(query)
            others = cursor.fetchall()
        if not others or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if others:
        pytest.fail(f"the test left {len(others)} other connection(s) open to the test "
                    f"database: {others}", pytrace=False)
