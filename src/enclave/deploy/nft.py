"""nftables rules generated from the tier map, one ruleset per network namespace.

Every namespace gets table ``inet enclave_<prefix>`` with default-drop ``input`` and
``forward`` chains. Accepting rules are only: replies (established/related), loopback
(127.0.0.0/8 and ::1 only), and one rule per flow of the map. Each rule has a counter,
and the last rule of each chain counts and logs the drop with a prefix naming the table.

* a service namespace accepts, on input, each flow whose destination it is (source
  address, its own address, the flow's ports, new connections only); its ``output``
  chain is default-drop too and allows only the flows it originates;
* the firewall namespace (``fw``) routes between all links and forwards each flow only
  from the source's link to the destination's link (anti-spoofing by interface);
* the ``internet`` namespace stands for arbitrary clients: its ``output`` is open, so
  the matrix proves the deployment holds without any help from the client side.
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.deploy import names
from enclave.deploy.tiermap import INTERNET, Flow, TierMap

CHAINS = ("input", "forward", "output")


@dataclass(frozen=True)
class Rule:
    chain: str
    match: str
    verdict: str  # "accept" or "drop"
    comment: str
    flow: Flow | None = None  # the tier-map flow this rule implements, if any

    def render(self) -> str:
        return f'{self.match} counter {self.verdict} comment "{self.comment}"'.lstrip()


def _ports(flow: Flow) -> str:
    ports = sorted(flow.ports)
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


def _label(flow: Flow) -> str:
    return f"flow {flow.source} -> {flow.target}:{','.join(map(str, flow.ports))}"


def link_index(tmap: TierMap, endpoint: str) -> int:
    """The link number of an endpoint (internet is 0, services follow the map order)."""
    return tmap.endpoints.index(endpoint)


def _base(chain: str) -> list[Rule]:
    rules = [Rule(chain, "ct state established,related", "accept", "replies"),
             Rule(chain, "ct state invalid", "drop", "invalid")]
    if chain == "input":
        rules += [Rule(chain, 'iif "lo" ip daddr 127.0.0.0/8', "accept", "loopback"),
                  Rule(chain, 'iif "lo" ip6 daddr ::1', "accept", "loopback")]
    if chain == "output":
        rules += [Rule(chain, 'oif "lo" ip daddr 127.0.0.0/8', "accept", "loopback"),
                  Rule(chain, 'oif "lo" ip6 daddr ::1', "accept", "loopback")]
    return rules


def _flow_match(tmap: TierMap, flow: Flow) -> str:
    return (f"ip saddr {tmap.address(flow.source)} ip daddr {tmap.address(flow.target)} "
            f"tcp dport {_ports(flow)} ct state new")


def endpoint_rules(tmap: TierMap, endpoint: str) -> list[Rule]:
    """Rules of a service's (or the internet client's) own namespace."""
    rules: list[Rule] = []
    for chain in CHAINS:
        if chain == "output" and endpoint == INTERNET:
            continue  # the outside is not ours to filter; policy accept below
        if chain != "forward":
            rules += _base(chain)
        for flow in tmap.flows:
            mine = flow.target if chain == "input" else flow.source
            if chain != "forward" and mine == endpoint:
                rules.append(Rule(chain, _flow_match(tmap, flow), "accept", _label(flow), flow))
    return rules


def firewall_rules(tmap: TierMap, prefix: str) -> list[Rule]:
    """Rules of the firewall namespace that routes between every link."""
    rules = _base("input") + _base("forward") + _base("output")
    for flow in tmap.flows:
        iif = names.router_if(prefix, link_index(tmap, flow.source))
        oif = names.router_if(prefix, link_index(tmap, flow.target))
        match = f'iifname "{iif}" oifname "{oif}" ' + _flow_match(tmap, flow)
        rules.append(Rule("forward", match, "accept", _label(flow), flow))
    return rules


def render(prefix: str, rules: list[Rule], *, open_output: bool = False,
           replace: bool = True) -> str:
    """The ruleset text for ``nft -f``. With ``replace`` the table is swapped atomically."""
    table = names.table(prefix)
    lines = [f"table inet {table} {{}}", f"delete table inet {table}"] if replace else []
    lines.append(f"table inet {table} {{")
    for chain in CHAINS:
        policy = "accept" if chain == "output" and open_output else "drop"
        lines.append(f"\tchain {chain} {{")
        lines.append(f"\t\ttype filter hook {chain} priority filter; policy {policy};")
        lines += [f"\t\t{r.render()}" for r in rules if r.chain == chain]
        if policy == "drop":
            lines.append(f'\t\tcounter log prefix "{table} {chain} drop: " drop')
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def ruleset(tmap: TierMap, prefix: str, namespace_of: str) -> str:
    """The ruleset for one namespace: ``fw``, ``internet`` or a service name."""
    if namespace_of == names.FIREWALL:
        return render(prefix, firewall_rules(tmap, prefix))
    return render(prefix, endpoint_rules(tmap, namespace_of),
                  open_output=namespace_of == INTERNET)
