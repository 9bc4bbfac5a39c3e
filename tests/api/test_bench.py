"""The API benchmark's core at a tiny size, so it cannot rot (no timing asserted)."""

from __future__ import annotations

import pytest
from benchmarks import bench_api


@pytest.mark.slow
@pytest.mark.tls
def test_benchmark_runs_end_to_end_at_tiny_size():
    result = bench_api.measure(people=30, requests=20)
    assert result["same_fields"]
    assert result["api_p50_ms"] > 0
    assert result["bare_p50_ms"] > 0


def test_bare_view_is_not_routed_outside_the_benchmark(client):
    assert client.get("/api/bench/people/1").status_code == 404
