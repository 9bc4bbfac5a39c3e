"""``benchmarks/bench_webhooks.py`` at a tiny size, so the benchmark cannot rot.

Not a ``django_db`` test: the benchmark creates, migrates and drops its own PostgreSQL
database, starts its own receiver and runs the engine in worker processes. No timing is
asserted.
"""

from __future__ import annotations

import secrets

import pytest
from benchmarks import bench_webhooks

from enclave.testing.plugin import postgres_reachable


@pytest.fixture(scope="module")
def figures():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    return bench_webhooks.run(deliveries=40, endpoints=3, workers=2,
                              db=f"enclave_bench_webhooks_smoke_{secrets.token_hex(3)}")


def test_every_queued_delivery_reaches_the_receiver_once(figures):
    assert (figures["queued"], figures["delivered"], figures["received"]) == (40, 40, 40)


def test_nothing_ends_in_another_state(figures):
    assert figures["other"] == [{}, {}]


def test_the_baseline_sends_its_requests(figures):
    assert figures["baseline"]["requests"] == 40
