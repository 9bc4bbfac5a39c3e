"""``benchmarks/bench_people.py`` at a tiny size, so the benchmark cannot rot.

Not a ``django_db`` test: the benchmark creates, migrates and drops its own PostgreSQL
database (and runs Django in subprocesses pointed at it), so it runs in the suite's
first pass next to the other non-database tests. No timing is asserted.
"""

from __future__ import annotations

import secrets

import pytest
from benchmarks import bench_people

from enclave.testing.plugin import postgres_reachable


@pytest.fixture(scope="module")
def figures():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is unreachable")
    return bench_people.run(people=300, import_rows=120, requests=4,
                            db=f"enclave_bench_people_smoke_{secrets.token_hex(3)}")


def test_list_benchmark_measures_the_view_and_the_raw_sql(figures):
    assert figures["list"]["requests"] >= 4
    assert figures["list"]["view_p95"] > 0
    assert figures["list"]["sql_p95"] > 0


def test_export_benchmark_exports_every_person_of_both_accounts(figures):
    assert (figures["export"]["big_rows"], figures["export"]["small_rows"]) == (300, 30)
    assert figures["export"]["baseline_mb"] > 0


def test_import_benchmark_imports_into_both_accounts_against_copy(figures):
    assert figures["import"]["rows"] == 120
    assert figures["import"]["empty_rows_s"] > 0
    assert figures["import"]["full_copy_rows_s"] > 0


def test_report_prints_every_figure(figures, capsys):
    bench_people.report(figures)
    out = capsys.readouterr().out
    assert all(label in out for label in ("(a) people list", "(b) CSV export", "(c) import"))
