"""The suite's cheap password hashing: opt-in production cost, never in production."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password

from enclave import settings as production
from enclave.core import controls
from enclave.identity.passwords import meets_policy

PROBE = controls.Probe("https://127.0.0.1:1", None, "localhost", None)


class TestFastHashing:
    def test_suite_hashes_with_the_cheapest_argon2id(self):
        assert make_password("correct horse battery").startswith(
            "argon2$argon2id$v=19$m=8,t=1,p=1$")

    @pytest.mark.real_password_hashing
    def test_marked_test_hashes_with_the_production_parameters(self):
        assert make_password("correct horse battery").startswith(
            "argon2$argon2id$v=19$m=65536,t=3,p=1$")


class TestProductionHashing:
    def test_production_settings_hash_with_argon2id_at_or_above_policy(self):
        assert production.PASSWORD_HASHERS[0] == "enclave.identity.passwords.EnclaveArgon2Hasher"
        assert meets_policy(production.ARGON2_PARAMETERS, production.ARGON2_POLICY_MINIMUM)

    @pytest.mark.django_db
    def test_auth1_fails_under_the_suites_cheap_parameters(self):
        result = controls.run_one(controls.registry()["AUTH-1"], PROBE)
        assert result.status == controls.FAIL
        assert "argon2id m=8 KiB t=1 p=1 is below the policy" in result.evidence


LEAKING = """
import threading

import pytest
from django.db import connection


@pytest.mark.django_db(transaction=True)
def test_leaks_a_connection():
    held = []

    def run():
        connection.ensure_connection()
        held.append(connection.connection)  # kept alive, never closed

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
"""


def test_a_database_connection_left_open_fails_the_test_on_postgresql(tmp_path):
    import os
    import subprocess
    import sys

    from enclave.config import PROJECT_ROOT
    from enclave.testing.plugin import postgres_reachable

    if not postgres_reachable():
        pytest.skip("needs PostgreSQL")
    (tmp_path / "test_leak.py").write_text(LEAKING)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ENCLAVE_") and k != "PYTEST_ADDOPTS"}
    env["ENCLAVE_TEST_DB"] = "postgres"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--rootdir",
         str(PROJECT_ROOT), "-c", str(PROJECT_ROOT / "pyproject.toml"),
         str(tmp_path / "test_leak.py")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the test left 1 other connection(s) open to the test database" in result.stdout
