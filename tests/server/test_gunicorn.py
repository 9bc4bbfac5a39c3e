"""gunicorn's own access line: only fields the redaction policy can see whole."""

from __future__ import annotations

import ast
import re

import pytest

from enclave import config

# gunicorn atoms that never carry a query string, a Referer or another request header.
ALLOWED_ATOMS = {"h", "m", "U", "H", "s", "B", "b", "M", "D", "T", "L", "p", "t"}


def access_log_format(module: str) -> str:
    source = (config.PROJECT_ROOT / "src" / "enclave" / "server" / f"{module}.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "access_log_format" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module} sets no access_log_format")


@pytest.mark.parametrize("module", ["gunicorn_https", "gunicorn_http"])
class TestAccessLogFormat:
    def test_format_logs_the_path_without_query_or_referer(self, module):
        atoms = set(re.findall(r"%\(([^)]+)\)s", access_log_format(module)))
        assert "U" in atoms
        assert atoms <= ALLOWED_ATOMS, atoms - ALLOWED_ATOMS
