"""Environment identity: the database is stamped at migrate and foreign stamps are refused."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from enclave.core.controls import FAIL, PASS, Probe, registry
from enclave.core.environment import (
    EnvironmentMismatch,
    current_stamp,
    do_stamp_environment,
    verify_database_environment,
)
from enclave.core.models import DeploymentStamp

PROBE = Probe("https://127.0.0.1:1", None, "localhost", None)


@pytest.mark.django_db
class TestStamp:
    def test_migrated_database_is_stamped_with_process_environment(self):
        assert current_stamp().environment == "test"

    def test_stamping_again_keeps_the_first_stamp(self):
        first = current_stamp()
        assert do_stamp_environment().instance_id == first.instance_id
        assert DeploymentStamp.objects.count() == 1

    def test_database_stamped_for_production_is_refused(self):
        DeploymentStamp.objects.update(environment="production")
        with pytest.raises(EnvironmentMismatch, match="stamped 'production'"):
            verify_database_environment()

    def test_system_check_reports_foreign_stamp(self):
        DeploymentStamp.objects.update(environment="production")
        with pytest.raises(SystemCheckError, match=r"enclave\.E107"):
            call_command("check", databases=["default"])


@pytest.mark.django_db
class TestEnvironmentControl:
    def test_passes_when_stamp_matches(self):
        assert registry()["ENV-1"].check(PROBE).status == PASS

    def test_fails_when_stamp_differs(self):
        DeploymentStamp.objects.update(environment="staging")
        outcome = registry()["ENV-1"].check(PROBE)
        assert outcome.status == FAIL
        assert "staging" in outcome.evidence


class TestServeRefusesForeignDatabase:
    def test_serve_against_dev_database_as_test_exits_with_one_line(self, tmp_path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
        env.update(ENCLAVE_VAR_DIR=str(tmp_path / "var"), ENCLAVE_ENV="dev",
                   ENCLAVE_HTTPS_PORT="1", ENCLAVE_HTTP_PORT="2")
        subprocess.run([sys.executable, "-m", "enclave", "manage", "migrate", "-v0"],
                       env=env, check=True, capture_output=True)
        env["ENCLAVE_ENV"] = "test"
        result = subprocess.run([sys.executable, "-m", "enclave", "serve"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "stamped 'dev'" in lines[0]
        assert "Traceback" not in result.stderr + result.stdout
