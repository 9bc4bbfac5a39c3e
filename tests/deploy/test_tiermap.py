"""The tier map: the shipped map is valid and says what the issue says; bad maps are refused
with one line before anything is created."""

from __future__ import annotations

import pytest

from enclave.deploy import tiermap
from enclave.deploy.tiermap import TierMapError, parse

BASE = """
version = 1
address_range = "10.231.0.0/16"
[tiers.internet]
[tiers.edge]
services.nginx = { ports = [443, 80] }
[tiers.app]
services.gunicorn = { ports = [8000] }
[tiers.worker]
services.celery-worker = { ports = [] }
[tiers.data]
services.postgres = { ports = [5432] }
services.redis = { ports = [6379] }
[[flow]]
from = "internet"
to = "nginx"
ports = [443, 80]
[[flow]]
from = "nginx"
to = "gunicorn"
[[flow]]
from = "gunicorn"
to = "postgres"
"""


def with_flow(source: str, target: str, ports: str = "") -> str:
    return BASE + f'[[flow]]\nfrom = "{source}"\nto = "{target}"\n' + (
        f"ports = {ports}\n" if ports else "")


def refusal(text: str) -> str:
    with pytest.raises(TierMapError) as info:
        parse(text, origin="tiers.toml")
    message = str(info.value)
    assert "\n" not in message
    return message


class TestShippedMap:
    def test_lists_exactly_the_flows_of_the_issue(self):
        tmap = tiermap.load()
        flows = {(f.source, f.target, p) for f in tmap.flows for p in f.ports}
        assert flows == {
            ("internet", "nginx", 443), ("internet", "nginx", 80),
            ("nginx", "gunicorn", 8000),
            ("gunicorn", "postgres", 5432), ("gunicorn", "redis", 6379),
            ("celery-worker", "postgres", 5432), ("celery-worker", "redis", 6379),
            ("celery-beat", "redis", 6379), ("celery-beat", "postgres", 5432),
            ("backup-runner", "postgres", 5432),
        }

    def test_places_each_service_in_its_tier(self):
        tmap = tiermap.load()
        assert {s.name: s.tier for s in tmap.services} == {
            "nginx": "edge", "gunicorn": "app", "celery-worker": "worker",
            "celery-beat": "worker", "backup-runner": "backup", "postgres": "data",
            "redis": "data"}

    def test_gives_every_endpoint_a_distinct_private_address(self):
        tmap = tiermap.load()
        addresses = [tmap.address(e) for e in tmap.endpoints]
        assert len(set(addresses)) == len(addresses)
        assert all(a.is_private and a in tmap.address_range for a in addresses)

    def test_puts_each_service_in_its_tier_subnet(self):
        tmap = tiermap.load()
        for svc in tmap.services:
            assert tmap.address(svc.name) in tmap.tier_network(svc.tier)


class TestRefusals:
    def test_unknown_service_in_a_flow_is_refused(self):
        assert "unknown service 'memcached'" in refusal(with_flow("gunicorn", "memcached"))

    def test_unknown_tier_is_refused(self):
        message = refusal(BASE + '[tiers.dmz]\nservices.proxy = { ports = [3128] }\n')
        assert "unknown tier 'dmz'" in message

    def test_flow_to_an_undeclared_port_is_refused(self):
        message = refusal(with_flow("gunicorn", "redis", "[6380]"))
        assert "port 6380 is not declared by 'redis'" in message

    def test_edge_to_data_store_is_refused(self):
        message = refusal(with_flow("nginx", "postgres"))
        assert "opens the data store 'postgres' to the edge tier" in message

    def test_internet_to_data_store_is_refused(self):
        assert "to the internet tier" in refusal(with_flow("internet", "redis"))

    def test_flow_out_of_the_data_tier_is_refused_as_a_cycle(self):
        # gunicorn → postgres plus postgres → nginx would close a path back to the edge.
        message = refusal(with_flow("postgres", "nginx", "[443]"))
        assert "goes outward or sideways (data → edge)" in message
        assert "cycle" in message

    def test_flow_within_a_tier_is_refused(self):
        message = refusal(with_flow("redis", "postgres"))
        assert "opens the data store 'postgres' to the data tier" in message

    def test_flow_to_the_internet_is_refused(self):
        assert "never a destination" in refusal(with_flow("gunicorn", "internet"))

    def test_service_in_two_tiers_is_refused(self):
        text = BASE.replace('services.celery-worker', 'services.gunicorn', 1)
        assert "declared in tiers 'app' and 'worker'" in refusal(text)

    def test_duplicate_flow_is_refused(self):
        assert "listed twice" in refusal(with_flow("nginx", "gunicorn"))

    def test_public_address_range_is_refused(self):
        text = BASE.replace("10.231.0.0/16", "8.8.0.0/16")
        assert "not inside a private range" in refusal(text)

    def test_unknown_key_is_refused(self):
        assert "unknown key 'port'" in refusal(BASE + '[[flow]]\nfrom="nginx"\nto="gunicorn"\n'
                                               'port=8000\n')

    def test_invalid_toml_is_refused_with_the_file_name(self):
        assert refusal("version = ").startswith("tiers.toml: not valid TOML")

    def test_missing_file_is_refused_in_one_line(self, tmp_path):
        with pytest.raises(TierMapError, match="cannot read the tier map"):
            tiermap.load(tmp_path / "nope.toml")


class TestAllowed:
    def test_flow_ports_default_to_the_destination_ports(self):
        tmap = parse(BASE)
        assert tmap.allowed("nginx", "gunicorn", 8000)
        assert not tmap.allowed("gunicorn", "nginx", 443)  # flows are one-way
