"""``benchmarks/bench_segments.py`` and ``bench_segments_ingest.py`` at a tiny size, so the
benchmarks cannot rot.

Not a ``django_db`` test: the benchmark creates, migrates and drops its own PostgreSQL
database (and runs Django in a subprocess pointed at it). No timing is asserted; the
worker itself checks that the compiled rule and the hand-written SQL count the same
people, and that the masked role's sample is masked.
"""

from __future__ import annotations

import secrets

import pytest
from benchmarks import bench_segments, bench_segments_ingest

from enclave.testing.plugin import postgres_reachable


@pytest.fixture(scope="module")
def figures():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    return bench_segments.run(people=400, events=6000, repeats=2,
                              db=f"enclave_bench_segments_smoke_{secrets.token_hex(3)}")


def test_count_matches_the_hand_written_query_and_is_timed(figures):
    assert figures["count"]["matches"] > 0
    assert figures["count"]["p95"] > 0
    assert figures["count"]["sql_p95"] > 0


def test_preview_is_timed(figures):
    assert figures["preview"]["p95"] > 0


@pytest.mark.slow
@pytest.mark.tls
def test_ingest_with_segments_links_every_event_and_runs_the_membership_job():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    result = bench_segments_ingest.measure(events=200, people=30, clients=2, rounds=1)
    assert result["linked"] == 400  # every measured event named a person
    assert result["job_passes"][0] >= 1
    assert result["none_eps"] > 0
    assert result["with_eps"] > 0
