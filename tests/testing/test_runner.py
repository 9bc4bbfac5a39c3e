"""The suite's PostgreSQL pass: skipped locally without PostgreSQL, a failure on CI."""

import os
import subprocess
import sys

from enclave.config import PROJECT_ROOT

DB_TEST = "tests/core/test_environment.py::TestStamp::test_stamping_again_keeps_the_first_stamp"


def run_pytest(*args, **env):
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("ENCLAVE_") and k != "PYTEST_ADDOPTS"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *args],
                          cwd=PROJECT_ROOT, env=full_env, capture_output=True, text=True,
                          timeout=300)


class TestPostgresPass:
    def test_unreachable_postgres_skips_database_tests_locally(self):
        result = run_pytest(DB_TEST, ENCLAVE_TEST_DB="postgres", ENCLAVE_TEST_PG_PORT="1")
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout

    def test_unreachable_postgres_fails_when_required(self):
        result = run_pytest(DB_TEST, ENCLAVE_TEST_DB="postgres", ENCLAVE_TEST_PG_PORT="1",
                            ENCLAVE_REQUIRE_POSTGRES="1")
        assert result.returncode != 0
        assert "unreachable" in result.stdout + result.stderr

    def test_any_skip_fails_the_ci_pass(self):
        result = run_pytest(DB_TEST, "--enclave-fail-on-skip", ENCLAVE_TEST_DB="postgres",
                            ENCLAVE_TEST_PG_PORT="1")
        assert result.returncode != 0

    def test_reachable_postgres_runs_database_tests(self):
        result = run_pytest(DB_TEST, "--enclave-fail-on-skip", ENCLAVE_TEST_DB="postgres",
                            ENCLAVE_REQUIRE_POSTGRES="1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout

    def test_postgres_pass_leaves_out_tests_without_database(self):
        result = run_pytest("tests/core/test_clock.py", ENCLAVE_TEST_DB="postgres")
        assert "deselected" in result.stdout
