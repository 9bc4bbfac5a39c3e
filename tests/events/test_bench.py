"""The ingest benchmark's core at a tiny size, so it cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import os
import socket

import pytest
from benchmarks import bench_ingest

PG = (os.environ.get("ENCLAVE_TEST_PG_HOST", "127.0.0.1"),
      int(os.environ.get("ENCLAVE_TEST_PG_PORT", "5432")))


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(PG, timeout=3):
            return True
    except OSError:
        return False


def test_bodies_are_batches_of_100_track_events_with_unique_ids():
    payloads = [json.loads(b) for b in bench_ingest.bodies(250, "x")]
    assert [len(p["batch"]) for p in payloads] == [100, 100, 50]
    ids = [e["message_id"] for p in payloads for e in p["batch"]]
    assert len(set(ids)) == 250


def test_spec_bodies_are_the_same_events_as_the_tracking_specs_batch_call():
    native = [e for b in bench_ingest.bodies(150, "x") for e in json.loads(b)["batch"]]
    spec = [e for b in bench_ingest.spec_bodies(150, "x") for e in json.loads(b)["batch"]]
    assert [(e["event"], e["properties"]) for e in spec] == [
        (e["event"], e["properties"]) for e in native]
    assert len({e["messageId"] for e in spec}) == 150


@pytest.mark.slow
@pytest.mark.skipif(not _pg_reachable(), reason="PostgreSQL is unreachable")
def test_benchmark_runs_end_to_end_at_tiny_size():
    result = bench_ingest.measure(events=300, clients=2, rounds=2)
    assert result["stored"] == 600
    assert result["spec_stored"] == 600
    assert result["http_eps"] > 0
    assert result["spec_eps"] > 0
    assert result["raw_eps"] > 0
