"""The CI linters run as part of the suite, and only here: ruff clean, bandit without high
findings. `.ci/run` does not run them again; `make test` fails on a lint error."""

import subprocess
import sys
from pathlib import Path

from enclave.config import PROJECT_ROOT

BIN = Path(sys.executable).parent
# Every tree of Python code in the project (the same paths as `make lint`).
RUFF_PATHS = ("src", "tests", "benchmarks")
NOT_OURS = ("var", "test-artifacts", "build", "dist")  # hidden directories (.venv*) too


class TestStaticAnalysis:
    def test_ruff_finds_nothing(self):
        result = subprocess.run([str(BIN / "ruff"), "check", *RUFF_PATHS],
                                cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_ruff_covers_every_python_tree_of_the_project(self):
        trees = {top.name for top in PROJECT_ROOT.iterdir()
                 if top.is_dir() and not top.name.startswith(".") and top.name not in NOT_OURS
                 and next(top.rglob("*.py"), None)}
        assert trees <= set(RUFF_PATHS)

    def test_bandit_finds_no_high_severity_issue(self):
        result = subprocess.run(
            [str(BIN / "bandit"), "-q", "-c", "pyproject.toml", "-r", "src",
             "--severity-level", "high"],
            cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
