"""``benchmarks/bench_email.py`` at a tiny size, so the benchmark cannot rot.

Not a ``django_db`` test: the benchmark creates, migrates and drops its own PostgreSQL
database, starts its own SMTP sink and runs the pipeline in worker processes. No timing
is asserted.
"""

from __future__ import annotations

import secrets

import pytest
from benchmarks import bench_email

from enclave.testing.plugin import postgres_reachable


@pytest.fixture(scope="module")
def figures():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    return bench_email.run(small=20, large=60, snapshot=150, workers=2,
                           db=f"enclave_bench_email_smoke_{secrets.token_hex(3)}")


def test_every_recipient_of_both_broadcasts_reaches_the_sink_signed(figures):
    assert [(figures[size]["sent"], figures[size]["received"]) for size in
            ("small", "large")] == [(20, 20), (60, 60)]


def test_nothing_ends_in_another_state(figures):
    assert figures["large"]["other"] == [{}, {}]


def test_the_snapshot_queues_everyone_in_the_segment(figures):
    assert figures["snapshot_rows"] == 150


def test_the_baseline_sends_its_messages_to_the_same_sink(figures):
    assert figures["baseline"]["messages"] == figures["baseline"]["received"] == 60


def test_report_prints_every_figure(figures, capsys):
    bench_email.report(figures)
    out = capsys.readouterr().out
    assert all(label in out for label in ("(a) ", "(b) worker peak RSS", "(c) snapshot"))
