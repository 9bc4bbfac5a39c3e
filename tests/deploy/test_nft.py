"""nftables rules generated from the tier map: each flow becomes an accept rule, nothing
else accepts (besides replies and loopback), drops are counted and logged."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from enclave.deploy import names, nft, tiermap
from enclave.deploy.tiermap import Flow

PREFIX = "enc0a1b"
ACCEPT = re.compile(
    r'^(?:iifname "(?P<iif>\w+)" oifname "(?P<oif>\w+)" )?ip saddr (?P<src>[\d.]+) '
    r"ip daddr (?P<dst>[\d.]+) tcp dport (?:(?P<port>\d+)|\{ (?P<ports>[\d, ]+) \}) "
    r'ct state new counter accept comment "flow [^"]+"$')
STRUCTURAL = (
    'ct state established,related counter accept comment "replies"',
    'iif "lo" ip daddr 127.0.0.0/8 counter accept comment "loopback"',
    'iif "lo" ip6 daddr ::1 counter accept comment "loopback"',
    'oif "lo" ip daddr 127.0.0.0/8 counter accept comment "loopback"',
    'oif "lo" ip6 daddr ::1 counter accept comment "loopback"',
)


def chains(text: str) -> dict[str, list[str]]:
    """Rule lines of each chain of the rendered ruleset."""
    out: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            current = line.split()[1]
            out[current] = []
        elif line == "}":
            current = None
        elif current:
            out[current].append(line)
    return out


def accepted(tmap, text: str, chain: str) -> set[tuple[str, str, int]]:
    """(source, target, port) triples a chain accepts; fails on any other accept rule."""
    by_address = {str(tmap.address(e)): e for e in tmap.endpoints}
    triples = set()
    for line in chains(text)[chain]:
        if "accept" not in line.split("comment")[0] or line in STRUCTURAL:
            continue
        m = ACCEPT.match(line)
        assert m, f"unexpected accept rule in {chain}: {line}"
        ports = [m["port"]] if m["port"] else m["ports"].split(", ")
        triples |= {(by_address[m["src"]], by_address[m["dst"]], int(p)) for p in ports}
    return triples


def flow_triples(tmap, *, source=None, target=None) -> set[tuple[str, str, int]]:
    return {(f.source, f.target, p) for f in tmap.flows for p in f.ports
            if source in (None, f.source) and target in (None, f.target)}


@pytest.fixture(scope="module")
def tmap():
    return tiermap.load()


class TestFirewallNamespace:
    def test_forwards_exactly_the_flows_of_the_map(self, tmap):
        text = nft.ruleset(tmap, PREFIX, "fw")
        assert accepted(tmap, text, "forward") == flow_triples(tmap)

    def test_forward_rules_pin_each_flow_to_its_links(self, tmap):
        text = nft.ruleset(tmap, PREFIX, "fw")
        line = next(r for r in chains(text)["forward"] if "-> gunicorn" in r)
        m = ACCEPT.match(line)
        assert m["iif"] == names.router_if(PREFIX, nft.link_index(tmap, "nginx"))
        assert m["oif"] == names.router_if(PREFIX, nft.link_index(tmap, "gunicorn"))

    def test_accepts_nothing_for_itself(self, tmap):
        text = nft.ruleset(tmap, PREFIX, "fw")
        assert accepted(tmap, text, "input") == set()
        assert accepted(tmap, text, "output") == set()


class TestServiceNamespaces:
    def test_each_service_accepts_only_flows_to_it(self, tmap):
        for svc in tmap.services:
            text = nft.ruleset(tmap, PREFIX, svc.name)
            assert accepted(tmap, text, "input") == flow_triples(tmap, target=svc.name), svc

    def test_each_service_sends_only_its_own_flows(self, tmap):
        for svc in tmap.services:
            text = nft.ruleset(tmap, PREFIX, svc.name)
            assert accepted(tmap, text, "output") == flow_triples(tmap, source=svc.name), svc

    def test_data_store_accepts_no_edge_or_internet_source(self, tmap):
        text = nft.ruleset(tmap, PREFIX, "postgres")
        sources = {src for src, _, _ in accepted(tmap, text, "input")}
        assert sources == {"gunicorn", "celery-worker", "celery-beat", "backup-runner"}

    def test_an_extra_flow_adds_exactly_one_accept_rule(self, tmap):
        wrong = tmap.with_extra_flows(Flow("backup-runner", "redis", (6379,)))
        before = nft.ruleset(tmap, PREFIX, "redis")
        after = nft.ruleset(wrong, PREFIX, "redis")
        assert (accepted(wrong, after, "input") - accepted(tmap, before, "input")
                == {("backup-runner", "redis", 6379)})


class TestEveryNamespace:
    @pytest.mark.parametrize("ns", ["fw", "internet", "nginx", "gunicorn", "postgres"])
    def test_input_and_forward_default_to_drop(self, tmap, ns):
        text = nft.ruleset(tmap, PREFIX, ns)
        for chain in ("input", "forward"):
            assert f"type filter hook {chain} priority filter; policy drop;" in text

    @pytest.mark.parametrize("ns", ["fw", "internet", "redis"])
    def test_drops_are_counted_and_logged_with_the_table_prefix(self, tmap, ns):
        text = nft.ruleset(tmap, PREFIX, ns)
        for chain in ("input", "forward"):
            assert chains(text)[chain][-1] == (
                f'counter log prefix "enclave_{PREFIX} {chain} drop: " drop')

    def test_every_rule_has_a_counter(self, tmap):
        for ns in ("fw", *tmap.endpoints):
            for rules in chains(nft.ruleset(tmap, PREFIX, ns)).values():
                assert all("counter" in r for r in rules if not r.startswith("type "))

    def test_uses_one_table_named_after_the_prefix(self, tmap):
        text = nft.ruleset(tmap, PREFIX, "gunicorn")
        assert set(re.findall(r"table inet (\S+)", text)) == {f"enclave_{PREFIX}"}

    @pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
                        reason="checking rules with nft needs root, nft and unshare")
    def test_nft_accepts_every_generated_ruleset(self, tmap, tmp_path):
        # `nft -c` only parses and checks; it runs in a throwaway network namespace anyway.
        for ns in ("fw", *tmap.endpoints):
            path = tmp_path / f"{ns}.nft"
            path.write_text(nft.ruleset(tmap, PREFIX, ns))
            result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(path)],
                                    capture_output=True, text=True, check=False)
            assert result.returncode == 0, (ns, result.stderr)
