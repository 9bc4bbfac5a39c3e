"""Contract test: schemathesis against a LIVE ``enclave serve`` (gunicorn over HTTPS with
its own CA) using the live OpenAPI document (fetched with the key, so it names the seeded
account's custom fields) and a real API key, with every check schemathesis has — no
server errors; responses conform (status code, content type, headers, body); data the
schema calls valid is accepted and data it calls invalid is refused — in the examples,
coverage, fuzzing and stateful phases. The seed differs per run: it is drawn from
``random``, which pytest-randomly seeds with the suite's printed seed, so
``--randomly-seed=N`` repeats a run; the test prints it and names it when it fails."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.testing.live import run_enclave

ROOT = Path(__file__).resolve().parents[2]
CHECKS = "all"
PHASES = "examples,coverage,fuzzing,stateful"
# Every scope except revoking keys (a fuzzer could revoke its own key mid-run) and
# email:write: a template's source must be MJML/HTML with valid Liquid, which no JSON
# schema can state, so schema-valid random text is rightly refused (422) — creating and
# changing templates is specified in tests/api/test_templates.py instead.
SCOPES = ("people:read,people:write,people:export,people:erase,audit:read,account:read,"
          "team:read,api_keys:read,events:write,segments:read,segments:write,topics:read,"
          "topics:write,email:read")
# One worker: with two, hypothesis describes strategies (ast.parse) in two threads at once,
# and CPython 3.11.7's AST constructor keeps one recursion counter for all threads
# (python/cpython#106905) — a random "AST constructor recursion depth mismatch".
# Rate limits out of the way: the fuzzer sends hundreds of requests a minute.
RATES = "api.key=100000/min,api.ip=100000/min,ingest.key=100000/min,ingest.ip=100000/min"


def _token(live) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.api.live_seed", SCOPES], cwd=ROOT, env=live.env,
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.tls
@pytest.mark.postgresql_pass  # ~7 minutes: make test runs it beside the SQLite pass
def test_live_api_conforms_to_its_openapi_schema(tmp_path, artifacts_dir):
    with run_enclave(tmp_path / "var", ENCLAVE_API_RATES=RATES) as live:
        token = _token(live)
        seed = random.randrange(2**31)  # noqa: S311 — a test seed, repeatable on purpose
        print(f"schemathesis seed {seed}")  # noqa: T201
        report = artifacts_dir / "schemathesis"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run",
             f"{live.https_url}/api/v1/openapi.json", "--url", live.https_url,
             "--tls-verify", str(live.ca_file), "-H", f"Authorization: Bearer {token}",
             "--checks", CHECKS, "--max-examples", "20",
             "--seed", str(seed),
             "--phases", PHASES, "--workers", "1",
             # Hypothesis's "too_slow" health check times data generation itself, so on
             # a loaded 2-core runner it failed the run at random (seed 577215: POST
             # /events' nested schema) without any request being wrong.
             "--suppress-health-check", "too_slow",
             "--request-timeout", "20", "--no-shrink", "--output-sanitize", "true",
             "--report", "junit", "--report-dir", str(report)],
            # A guard against a hung run, not a speed target: the run takes 11-13 minutes
            # on the 2-core runner beside the other pass (c37: 761 s), and a loaded
            # machine took it past 900 s (c36) with every request answered correctly.
            cwd=tmp_path, capture_output=True, text=True, timeout=1500, check=False)
        server_log = live.log()
    (artifacts_dir / "schemathesis-server.log").write_text(server_log)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"schemathesis seed {seed}\n" + output[-8000:] + \
        "\n--- server log ---\n" + server_log[-4000:]
    assert token not in output
