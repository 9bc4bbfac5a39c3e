"""The CI scanners run as part of the suite: ruff clean, bandit without high findings."""

import subprocess
import sys
from pathlib import Path

from enclave.config import PROJECT_ROOT

BIN = Path(sys.executable).parent


class TestStaticAnalysis:
    def test_ruff_finds_nothing(self):
        result = subprocess.run([str(BIN / "ruff"), "check", "src", "tests"],
                                cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_bandit_finds_no_high_severity_issue(self):
        result = subprocess.run(
            [str(BIN / "bandit"), "-q", "-c", "pyproject.toml", "-r", "src",
             "--severity-level", "high"],
            cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
