"""The controls registry and `enclave security report`."""

import json
import os
import subprocess
import sys

import pytest

from enclave.core import controls
from enclave.core.controls import FAIL, PASS, Control, Probe
from enclave.core.models import ControlResult

PROBE = Probe("https://127.0.0.1:1", "http://127.0.0.1:2", "localhost", None)

# The controls the Foundation promises; each app may add more, none may go missing.
FOUNDATION_CONTROLS = {"HTTPS-1", "HTTPS-2", "TLS-1", "TLS-2", "HDR-1", "ENV-1", "DEP-1"}


class TestRegistry:
    def test_foundation_controls_are_registered(self):
        assert set(controls.registry()) >= FOUNDATION_CONTROLS

    def test_every_control_has_claim_and_public_wording(self):
        for ctrl in controls.registry().values():
            assert ctrl.claim.strip()
            assert ctrl.public.strip()

    def test_crashing_check_fails_instead_of_passing(self):
        def boom(probe):
            raise RuntimeError("kaput")

        result = controls.run_one(Control("X-1", "c", "p", boom), PROBE)
        assert result.status == FAIL
        assert "kaput" in result.evidence

    def test_unknown_status_fails(self):
        result = controls.run_one(
            Control("X-2", "c", "p", lambda p: controls.Outcome("ok", "")), PROBE)
        assert result.status == FAIL

    def test_duplicate_id_with_other_check_is_refused(self):
        with pytest.raises(ValueError, match="duplicate"):
            controls.control("ENV-1", claim="x", public="y")(lambda p: controls.passed(""))


@pytest.mark.django_db
class TestRecording:
    def test_recorded_results_replace_previous_ones(self):
        from enclave.core.actions import do_record_control_results

        do_record_control_results(controls.run_all(PROBE, only={"ENV-1"}))
        do_record_control_results(controls.run_all(PROBE, only={"ENV-1"}))
        assert ControlResult.objects.filter(control_id="ENV-1").count() == 1


def run_report(env_extra, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "enclave", "security", "report", *args],
                          env=env, capture_output=True, text=True, timeout=180)


class TestReportCommand:
    def test_report_fails_with_evidence_when_nothing_is_listening(self, tmp_path):
        env = {"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(tmp_path / "var"),
               "ENCLAVE_HTTPS_PORT": "9", "ENCLAVE_HTTP_PORT": "7"}
        subprocess.run([sys.executable, "-m", "enclave", "manage", "migrate", "-v0"],
                       env={**os.environ, **env}, check=True)
        result = run_report(env, "--json")
        assert result.returncode == 1
        report = json.loads(result.stdout)
        assert report["passed"] is False
        statuses = {c["id"]: c["status"] for c in report["controls"]}
        assert statuses["TLS-1"] == FAIL
        assert statuses["ENV-1"] == PASS

    def test_report_on_running_embedded_server_passes_transport_controls(self, live_enclave):
        result = run_report(live_enclave.env, "--json")
        report = json.loads(result.stdout)
        statuses = {c["id"]: c["status"] for c in report["controls"]}
        # The embedded server terminates TLS itself and answers plain HTTP: every transport
        # control applies there and must pass (not-applicable would hide a broken probe).
        transport = ("HTTPS-1", "HTTPS-2", "TLS-1", "TLS-2", "HDR-1", "ENV-1")
        assert {cid: statuses[cid] for cid in transport} == dict.fromkeys(transport, PASS), \
            report
