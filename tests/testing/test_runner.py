"""The suite runner: the PostgreSQL pass (skipped locally without PostgreSQL, a failure
on CI), the SQLite pass's skips, the order seed, and how the two passes run."""

import os
import subprocess
import sys

from enclave.config import PROJECT_ROOT

DB_TEST = "tests/core/test_environment.py::TestStamp::test_stamping_again_keeps_the_first_stamp"


def _run(module: str, args, env):
    """``python -m <module> -q <args>`` without this process's Enclave settings."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("ENCLAVE_") and k != "PYTEST_ADDOPTS"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", module, "-q", *args],
                          cwd=PROJECT_ROOT, env=full_env, capture_output=True, text=True,
                          timeout=300)


def run_pytest(*args, **env):
    return _run("pytest", args, env)


class TestPostgresPass:
    def test_unreachable_postgres_skips_database_tests_locally(self):
        result = run_pytest(DB_TEST, ENCLAVE_TEST_DB="postgres", ENCLAVE_TEST_PG_PORT="1")
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout

    def test_unreachable_postgres_fails_when_required(self):
        result = run_pytest(DB_TEST, ENCLAVE_TEST_DB="postgres", ENCLAVE_TEST_PG_PORT="1",
                            ENCLAVE_REQUIRE_POSTGRES="1")
        assert result.returncode == 4  # pytest's usage error: nothing ran
        assert "ENCLAVE_REQUIRE_POSTGRES=1 but PostgreSQL at 127.0.0.1:1 is unreachable" in (
            result.stdout + result.stderr)

    def test_any_skip_fails_the_ci_pass(self):
        result = run_pytest(DB_TEST, "--enclave-fail-on-skip", ENCLAVE_TEST_DB="postgres",
                            ENCLAVE_TEST_PG_PORT="1")
        assert result.returncode == 1
        assert "enclave: 1 test(s) skipped where none may be; failing" in result.stdout

    def test_reachable_postgres_runs_database_tests(self):
        result = run_pytest(DB_TEST, "--enclave-fail-on-skip", ENCLAVE_TEST_DB="postgres",
                            ENCLAVE_REQUIRE_POSTGRES="1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout

    def test_postgres_pass_leaves_out_tests_without_database(self):
        result = run_pytest("tests/core/test_clock.py", ENCLAVE_TEST_DB="postgres")
        assert result.returncode == 5  # no test left to run
        assert "4 deselected" in result.stdout


SKIPPING = """
import pytest


def test_needs_a_tool():
    pytest.skip("the tool is not installed")


@pytest.mark.django_db
def test_needs_postgresql():
    pytest.skip("PostgreSQL only")
"""


class TestSqlitePass:
    """On CI a test that runs only in the SQLite pass (no database) may not skip: nothing
    would run it. A database test skipped on SQLite runs again on PostgreSQL."""

    def run(self, tmp_path, *args):
        (tmp_path / "test_skipping.py").write_text(SKIPPING)
        return run_pytest("-c", str(PROJECT_ROOT / "pyproject.toml"), "--rootdir",
                          str(tmp_path), str(tmp_path), *args)

    def test_skips_pass_without_the_option(self, tmp_path):
        result = self.run(tmp_path)
        assert result.returncode == 0, result.stdout
        assert "2 skipped" in result.stdout

    def test_a_skipped_test_without_database_fails_the_ci_pass(self, tmp_path):
        result = self.run(tmp_path, "--enclave-fail-on-skip-outside-db")
        assert result.returncode == 1, result.stdout
        assert "enclave: skipped: test_skipping.py::test_needs_a_tool" in result.stdout
        assert "enclave: 1 test(s) skipped where none may be; failing" in result.stdout

    def test_a_skipped_database_test_is_left_to_the_postgresql_pass(self, tmp_path):
        result = self.run(tmp_path, "--enclave-fail-on-skip-outside-db", "-k", "postgresql")
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout


class TestOrder:
    def test_runner_picks_one_seed_for_both_passes_when_none_is_given(self):
        from enclave.testing.run import _order_args

        args, seed = _order_args([])
        assert args == [f"--randomly-seed={seed}"]
        assert seed.isdigit()

    def test_runner_keeps_the_seed_it_is_given(self):
        from enclave.testing.run import _order_args

        assert _order_args(["--randomly-seed=1234", "-x"]) == ([], "1234")
        assert _order_args(["--randomly-seed", "99"]) == ([], "99")

    def test_runner_has_no_seed_when_random_order_is_off(self):
        from enclave.testing.run import _order_args

        assert _order_args(["-p", "no:randomly"]) == ([], None)

    def test_same_seed_gives_the_same_order(self):
        first = run_pytest("tests/core/test_clock.py", "--randomly-seed=7", "-v", "-v")
        again = run_pytest("tests/core/test_clock.py", "--randomly-seed=7", "-v", "-v")
        assert first.returncode == 0, first.stdout
        assert "Using --randomly-seed=7" in first.stdout

        def order(out):
            return [line.split(" ")[0] for line in out.splitlines() if "::" in line]
        assert order(first.stdout) == order(again.stdout)
        assert len(order(first.stdout)) == 4


def run_make_test(*args, **env):
    """``python -m enclave.testing.run`` (what ``make test`` runs) with ``args``."""
    return _run("enclave.testing.run", args, env)


class TestPasses:
    def test_the_passes_run_together_and_the_postgresql_output_follows(self, tmp_path):
        result = run_make_test(DB_TEST, "-p", "no:randomly",
                               ENCLAVE_TEST_ARTIFACTS=str(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert out.index("=== Enclave test suite on sqlite") < out.index(
            "=== Enclave test suite on postgres (run alongside)") < out.index(
            "SQLite pass: ok; PostgreSQL pass: ok")
        assert "1 passed" in (tmp_path / "postgresql-pass.log").read_text()

    def test_one_by_one_prints_each_pass_as_it_runs(self, tmp_path):
        result = run_make_test(DB_TEST, "-p", "no:randomly", ENCLAVE_TEST_PASSES="one-by-one",
                               ENCLAVE_TEST_ARTIFACTS=str(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "=== Enclave test suite on postgres ===" in result.stdout
        assert not (tmp_path / "postgresql-pass.log").exists()

    def test_an_unknown_way_of_running_the_passes_is_refused(self):
        result = run_make_test(DB_TEST, ENCLAVE_TEST_PASSES="both")
        assert result.returncode == 1
        assert "ENCLAVE_TEST_PASSES must be together or one-by-one, not 'both'" in \
            result.stderr


BALANCED = """
import pytest


@pytest.mark.postgresql_pass
def test_long_and_without_a_database():
    pass


def test_plain():
    pass
"""


class TestBalance:
    """Long tests that need no database of the test process run in the PostgreSQL pass
    (marker ``postgresql_pass``), so the two side-by-side passes end together."""

    def run(self, tmp_path, *args, **env):
        (tmp_path / "test_balanced.py").write_text(BALANCED)
        return run_pytest("-c", str(PROJECT_ROOT / "pyproject.toml"), "--rootdir",
                          str(tmp_path), str(tmp_path), "-p", "no:randomly", *args, **env)

    def test_the_balanced_sqlite_pass_leaves_a_marked_test_out(self, tmp_path):
        result = self.run(tmp_path, "--enclave-balance")
        assert "1 passed, 1 deselected" in result.stdout, result.stdout

    def test_the_postgresql_pass_runs_a_marked_test(self, tmp_path):
        result = self.run(tmp_path, ENCLAVE_TEST_DB="postgres")
        assert "1 passed, 1 deselected" in result.stdout, result.stdout

    def test_a_marked_test_asked_for_alone_runs_on_sqlite(self, tmp_path):
        result = self.run(tmp_path)
        assert "2 passed" in result.stdout, result.stdout
