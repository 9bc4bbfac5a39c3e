"""The local n-tier deployment, for real: namespaces, nftables, nginx, gunicorn, Celery,
PostgreSQL and Redis. One bring-up for the module; always torn down at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from enclave.core import controls
from enclave.deploy import local, matrix, names, tiermap
from enclave.deploy.tiermap import Flow


def _why_skip() -> str | None:
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None or subprocess.run(
            ["ip", "netns", "list"], capture_output=True, check=False).returncode != 0:
        return "`ip netns` is unavailable on this machine"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_skip() is not None,
                                                   reason=_why_skip() or "")]


def host_network() -> tuple[str, str]:
    """The host's own interfaces and nftables tables: must be identical before and after."""
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True)
    return links.stdout, tables.stdout


def our_namespaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listed.stdout.splitlines()
            if line.startswith(f"{prefix}-")]


@pytest.fixture(scope="module")
def tiers():
    state_dir = settings.CONFIG.var_dir / "tiers"  # where NET-1 looks
    state = local.up(tiermap.load(), state_dir)
    try:
        yield state
    finally:
        leftover = local.load_state(state_dir)
        if leftover is not None:
            local.teardown(leftover)


class TestMatrix:
    def test_matches_the_tier_map(self, tiers, artifacts_dir):
        result = matrix.run_matrix(tiers)
        (artifacts_dir / "tiers-matrix.txt").write_text(result.as_table() + "\n")
        assert result.ok, result.as_table()
        assert result.open_flows() == matrix.expected(tiermap.load())

    def test_only_the_edge_is_reachable_from_the_internet(self, tiers):
        result = matrix.run_matrix(tiers)
        assert {(t, p) for s, t, p in result.open_flows() if s == "internet"} == {
            ("nginx", 443), ("nginx", 80)}

    def test_app_has_no_route_to_the_internet(self, tiers):
        internet = str(tiers.tier_map.address("internet"))
        route = subprocess.run(["ip", "-n", tiers.ns("gunicorn"), "route", "get", internet],
                               capture_output=True, text=True, check=False)
        assert route.returncode != 0
        assert "unreachable" in route.stderr.lower()

    def test_extra_accept_rule_is_reported_as_a_difference(self, tiers):
        # A deliberately wrong rule set: the data store may open connections to the app.
        # (Routes exist both ways between these tiers, so only nftables stands in between.)
        declared = tiermap.load()
        wrong = declared.with_extra_flows(Flow("redis", "gunicorn", (8000,)))
        local.reload_rules(tiers, wrong)
        try:
            result = matrix.run_matrix(tiers)
            outcome = controls.run_one(controls.registry()["NET-1"], probe=None)
        finally:
            local.reload_rules(tiers, declared)
        assert [(c.source, c.target, c.port, c.outcome) for c in result.differences] == [
            ("redis", "gunicorn", 8000, "open")]
        assert "OPEN!" in result.as_table()
        assert outcome.status == controls.FAIL
        assert "redis→gunicorn:8000 expected closed, observed open" in outcome.evidence
        assert matrix.run_matrix(tiers).ok  # the declared rules are back


class TestEndToEnd:
    def test_health_over_https_from_the_internet_is_200(self, tiers):
        response = local.https_get(tiers, "/api/v1/health")
        assert response["status"] == 200, response
        assert response["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert response["headers"]["Strict-Transport-Security"].startswith("max-age=")

    def test_page_through_the_edge_is_served_from_the_private_postgres(self, tiers):
        # Write a marker straight into the data namespace's cluster, then read it back
        # through internet → nginx → gunicorn → PostgreSQL.
        local.psql(tiers, """
            INSERT INTO core_controlresult (control_id, status, evidence, public_summary,
                                            checked_at)
            VALUES ('NET-1', 'pass', 'tier test marker', 'marker', '2031-07-04 12:34:56+00')
            ON CONFLICT (control_id) DO UPDATE SET checked_at = EXCLUDED.checked_at;
        """, database=local.DB_NAME)
        response = local.https_get(tiers, "/security")
        assert response["status"] == 200
        assert 'datetime="2031-07-04T12:34:56+00:00"' in response["body"]

    def test_database_is_stamped_test_and_used_by_the_app_address(self, tiers):
        stamp = local.psql(tiers, "SELECT environment FROM core_deploymentstamp",
                           database=local.DB_NAME)
        assert stamp == "test"
        local.https_get(tiers, "/api/v1/health")
        clients = local.psql(tiers, "SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
                                    "WHERE datname = current_database()", database=local.DB_NAME)
        assert str(tiers.tier_map.address("gunicorn")) in clients.split()

    def test_worker_is_connected_to_the_private_redis(self, tiers):
        clients = local.redis_cli(tiers, "CLIENT", "LIST")
        assert f"addr={tiers.tier_map.address('celery-worker')}:" in clients


class TestControl:
    def test_net1_passes_while_the_tiers_are_up(self, tiers):
        outcome = controls.run_one(controls.registry()["NET-1"], probe=None)
        assert outcome.status == controls.PASS, outcome.evidence
        assert tiers.prefix in outcome.evidence


class TestFailureHalfway:
    def test_failed_bring_up_removes_what_it_created(self, tmp_path, monkeypatch):
        prefix = names.new_prefix()

        def broken(*args, **kwargs):
            raise local.DeployError("redis would not start (simulated)")

        monkeypatch.setattr(local.names, "new_prefix", lambda: prefix)
        monkeypatch.setattr(local, "_start_redis", broken)  # after postgres is running
        with pytest.raises(local.DeployError, match="everything created was removed"):
            local.up(tiermap.load(), tmp_path)
        assert our_namespaces(prefix) == []
        assert not (local.RUNTIME_ROOT / prefix).exists()
        assert not (tmp_path / local.STATE_FILE).exists()
        assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                    if prefix in p.read_text(errors="replace")]


class TestDown:
    def test_down_removes_exactly_what_up_created(self, tmp_path):
        """A deployment of its own (the shared one serves the other tests in any order;
        deployments share nothing, each name carries its own prefix)."""
        before = host_network()
        own = local.up(tiermap.load(), tmp_path)
        runtime = Path(own.runtime_dir)
        pids = [p["pid"] for p in own.processes]
        removed = local.down(tmp_path)
        assert len([r for r in removed if r.startswith("namespace ")]) == 9
        assert our_namespaces(own.prefix) == []
        assert not runtime.exists()
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
        assert host_network() == before
