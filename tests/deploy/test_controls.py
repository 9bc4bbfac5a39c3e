"""NET-1 without live tiers: not applicable in embedded mode, never a false pass."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from enclave.core import controls
from enclave.core.models import ControlResult
from enclave.deploy import local, matrix


@pytest.fixture
def state_dir():
    path = settings.CONFIG.var_dir / "tiers"
    yield path
    (path / local.STATE_FILE).unlink(missing_ok=True)


def net1() -> controls.Result:
    return controls.run_one(controls.registry()["NET-1"], probe=None)


class TestNet1:
    def test_is_not_applicable_in_embedded_mode(self, state_dir):
        result = net1()
        assert result.status == controls.NOT_APPLICABLE
        assert result.evidence.startswith("embedded mode:")

    def test_fails_on_a_corrupt_state_file(self, state_dir):
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / local.STATE_FILE).write_text("{not json")
        assert net1().status == controls.FAIL

    def test_fails_when_the_tiers_never_finished_coming_up(self, state_dir):
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / local.STATE_FILE).write_text(json.dumps(
            {"prefix": "enc0000", "runtime_dir": "/nonexistent", "map_text": "",
             "status": "creating"}))
        result = net1()
        assert result.status == controls.FAIL
        assert "not up" in result.evidence

    @pytest.mark.django_db
    def test_security_report_records_it_as_not_applicable(self, state_dir):
        from enclave.core.actions import do_record_control_results

        do_record_control_results(controls.run_all(probe=None, only={"NET-1"}))
        assert ControlResult.objects.get(control_id="NET-1").status == controls.NOT_APPLICABLE


class TestMatrixReport:
    def cells(self, observed_open: set[tuple[str, str, int]]) -> matrix.Matrix:
        expected = {("internet", "nginx", 443)}
        targets = (("nginx", 443), ("redis", 6379))
        sources = ("internet", "nginx")
        cells = tuple(matrix.Cell(s, t, p, (s, t, p) in expected,
                                  "open" if (s, t, p) in observed_open else "timeout")
                      for s in sources for t, p in targets)
        return matrix.Matrix(sources, targets, cells)

    def test_table_marks_an_unexpected_open_port(self):
        report = self.cells({("internet", "nginx", 443), ("nginx", "redis", 6379)})
        assert not report.ok
        assert "OPEN!" in report.as_table()
        assert "nginx -> redis:6379: expected closed, observed open" in report.as_table()

    def test_table_marks_an_allowed_flow_that_does_not_connect(self):
        report = self.cells(set())
        assert "shut!" in report.as_table()

    def test_json_lists_every_cell_with_expected_and_observed(self):
        data = json.loads(self.cells({("internet", "nginx", 443)}).as_json())
        assert data["ok"] is True
        assert len(data["cells"]) == 4
        assert data["cells"][0] == {"from": "internet", "to": "nginx", "port": 443,
                                    "expected": "open", "observed": "open", "ok": True}
