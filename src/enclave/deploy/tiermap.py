"""The tier map (``deploy/tiers.toml``): tiers, services, and the only allowed flows.

:func:`load` parses and validates the map; :func:`parse` does the same for a string.
A map that breaks a rule raises :class:`TierMapError` whose ``str()`` is one line — it is
raised before anything (namespace, rule, manifest) is created from the map.

Rules (documented in docs/deployment.md):

* the tiers are the fixed set :data:`TIERS`; ``internet`` is the outside and holds no
  services; every service lives in exactly one tier and has a unique name;
* a flow names a declared source (a service or ``internet``), a declared destination
  service, and only ports that destination declares; a flow is listed once;
* flows point inward: the source tier's depth is strictly lower than the destination's
  (internet 0 → edge 1 → app/worker/backup 2 → data 3). No flow leaves the data tier and
  none goes sideways within or between same-depth tiers, so the flow graph has no cycle
  that could hand a data store back towards the edge (e.g. ``postgres → nginx``);
* data-tier services are reached only from the tiers in :data:`DATA_CLIENT_TIERS`
  (app, worker, backup) — never from the edge or the internet.

Everything not listed is denied in both directions, including within a tier.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from enclave.config import PROJECT_ROOT

DEFAULT_MAP = PROJECT_ROOT / "deploy" / "tiers.toml"
INTERNET = "internet"
DATA_TIER = "data"
# Fixed tier vocabulary, in address order (tier i gets the (i+1)-th /24 of the range).
TIERS = ("internet", "edge", "app", "worker", "backup", "data")
DEPTH = {"internet": 0, "edge": 1, "app": 2, "worker": 2, "backup": 2, "data": 3}
DATA_CLIENT_TIERS = ("app", "worker", "backup")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
RESERVED_NAMES = frozenset({INTERNET, "fw"})
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in
                       ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
MAX_SERVICES_PER_TIER = 63  # /30 links in a /24


class TierMapError(ValueError):
    """The tier map is invalid. ``str()`` is one line naming the file and the problem."""


@dataclass(frozen=True)
class Service:
    name: str
    tier: str
    ports: tuple[int, ...]
    index: int  # position within its tier (addresses)


@dataclass(frozen=True)
class Flow:
    source: str  # a service name or "internet"
    target: str  # a service name
    ports: tuple[int, ...]
    why: str = ""

    def __str__(self) -> str:
        return f"{self.source} → {self.target}:{','.join(map(str, self.ports))}"


@dataclass(frozen=True)
class TierMap:
    """A validated tier map. Build with :func:`load` or :func:`parse`."""

    address_range: ipaddress.IPv4Network
    services: tuple[Service, ...]
    flows: tuple[Flow, ...]
    descriptions: dict[str, str] = field(default_factory=dict, compare=False)
    text: str = field(default="", compare=False)

    # -- lookups ---------------------------------------------------------------------
    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    def tier_of(self, endpoint: str) -> str:
        return INTERNET if endpoint == INTERNET else self.service(endpoint).tier

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Everything that gets a namespace: the internet client, then every service."""
        return (INTERNET, *(s.name for s in self.services))

    @property
    def targets(self) -> tuple[tuple[str, int], ...]:
        """Every (service, port) that listens — the columns of the reachability matrix."""
        return tuple((s.name, p) for s in self.services for p in s.ports)

    def allowed(self, source: str, target: str, port: int) -> bool:
        return any(f.source == source and f.target == target and port in f.ports
                   for f in self.flows)

    def peers(self, endpoint: str) -> set[str]:
        """Endpoints this one exchanges packets with (either direction of a flow)."""
        return ({f.target for f in self.flows if f.source == endpoint}
                | {f.source for f in self.flows if f.target == endpoint})

    # -- addresses -------------------------------------------------------------------
    def tier_network(self, tier: str) -> ipaddress.IPv4Network:
        return list(self.address_range.subnets(new_prefix=24))[TIERS.index(tier) + 1]

    def link_network(self, endpoint: str) -> ipaddress.IPv4Network:
        """The /30 between the firewall namespace and this endpoint."""
        index = 0 if endpoint == INTERNET else self.service(endpoint).index
        tier = self.tier_network(self.tier_of(endpoint))
        return ipaddress.ip_network(f"{tier.network_address + 4 * index}/30")

    def address(self, endpoint: str) -> ipaddress.IPv4Address:
        return self.link_network(endpoint).network_address + 2

    def gateway(self, endpoint: str) -> ipaddress.IPv4Address:
        """The firewall's address on this endpoint's link."""
        return self.link_network(endpoint).network_address + 1

    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def with_extra_flows(self, *flows: Flow) -> TierMap:
        """A copy with more flows and no validation — only to build deliberately wrong rule
        sets in tests (the matrix must then report the difference)."""
        return replace(self, flows=(*self.flows, *flows))


def load(path: Path | str = DEFAULT_MAP) -> TierMap:
    """Read and validate a tier map file. Raises :class:`TierMapError` (one line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TierMapError(f"{path}: cannot read the tier map ({exc.strerror})") from None
    return parse(text, origin=str(path))


def parse(text: str, *, origin: str = "tier map") -> TierMap:
    """Validate tier-map TOML text. Raises :class:`TierMapError` (one line)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TierMapError(f"{origin}: not valid TOML ({exc})") from None
    try:
        return _build(doc, text)
    except TierMapError as exc:
        raise TierMapError(f"{origin}: {exc}") from None


def _build(doc: dict, text: str) -> TierMap:
    _only_keys(doc, {"version", "address_range", "tiers", "flow"}, "the top level")
    if doc.get("version") != 1:
        raise TierMapError(f"version must be 1, got {doc.get('version')!r}")
    address_range = _address_range(doc.get("address_range"))
    services, descriptions = _services(doc.get("tiers"))
    flows = _flows(doc.get("flow", []), {s.name: s for s in services})
    return TierMap(address_range, services, flows, descriptions, text)


def _only_keys(table: object, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise TierMapError(f"{where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise TierMapError(f"unknown key {unknown[0]!r} in {where}")


def _address_range(raw: object) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(str(raw))
    except ValueError:
        raise TierMapError(f"address_range must be an IPv4 network, got {raw!r}") from None
    if not any(net.subnet_of(p) for p in PRIVATE_RANGES):
        raise TierMapError(f"address_range {net} is not inside a private range (RFC 1918)")
    if net.prefixlen > 21:
        raise TierMapError(f"address_range {net} is too small: one /24 per tier needs a /21")
    return net


def _services(tiers: object) -> tuple[tuple[Service, ...], dict[str, str]]:
    if not isinstance(tiers, dict) or not tiers:
        raise TierMapError("no [tiers] declared")
    services: list[Service] = []
    descriptions: dict[str, str] = {}
    seen: dict[str, str] = {}
    for tier, body in tiers.items():
        if tier not in TIERS:
            raise TierMapError(f"unknown tier {tier!r} (tiers are {', '.join(TIERS)})")
        _only_keys(body, {"description", "services"}, f"[tiers.{tier}]")
        descriptions[tier] = str(body.get("description", ""))
        declared = body.get("services", {})
        if tier == INTERNET and declared:
            raise TierMapError("the internet tier is the outside and holds no services")
        if not isinstance(declared, dict):
            raise TierMapError(f"[tiers.{tier}] services must be a table")
        if len(declared) > MAX_SERVICES_PER_TIER:
            raise TierMapError(f"tier {tier!r} has more than {MAX_SERVICES_PER_TIER} services")
        for index, (name, spec) in enumerate(declared.items(), start=1):
            if name in seen:
                raise TierMapError(f"service {name!r} is declared in tiers {seen[name]!r} "
                                   f"and {tier!r}")
            if not SERVICE_NAME.match(name) or name in RESERVED_NAMES:
                raise TierMapError(f"service name {name!r} must match {SERVICE_NAME.pattern} "
                                   f"and not be one of {', '.join(sorted(RESERVED_NAMES))}")
            _only_keys(spec, {"ports"}, f"service {name!r}")
            ports = _ports(spec.get("ports"), f"service {name!r}", allow_empty=True)
            services.append(Service(name, tier, ports, index))
            seen[name] = tier
    return tuple(services), descriptions


def _ports(raw: object, where: str, *, allow_empty: bool = False) -> tuple[int, ...]:
    if not isinstance(raw, list) or (not raw and not allow_empty):
        raise TierMapError(f"{where}: ports must be a list of TCP ports")
    for port in raw:
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise TierMapError(f"{where}: {port!r} is not a TCP port (1–65535)")
    if len(set(raw)) != len(raw):
        raise TierMapError(f"{where}: a port is listed twice")
    return tuple(raw)


def _flows(raw: object, services: dict[str, Service]) -> tuple[Flow, ...]:
    if not isinstance(raw, list):
        raise TierMapError("[[flow]] must be an array of tables")
    flows: list[Flow] = []
    for number, spec in enumerate(raw, start=1):
        where = f"flow {number}"
        _only_keys(spec, {"from", "to", "ports", "why"}, where)
        source, target = spec.get("from"), spec.get("to")
        where = f"flow {number} ({source} → {target})"
        if source != INTERNET and source not in services:
            raise TierMapError(f"{where}: unknown service {source!r}")
        if target not in services:
            raise TierMapError(f"{where}: unknown service {target!r}" if target != INTERNET
                               else f"{where}: the internet is never a destination")
        dest = services[target]
        if "ports" in spec:
            ports = _ports(spec["ports"], where)
        elif dest.ports:
            ports = dest.ports
        else:
            raise TierMapError(f"{where}: {target!r} declares no ports; nothing can reach it")
        undeclared = [p for p in ports if p not in dest.ports]
        if undeclared:
            raise TierMapError(f"{where}: port {undeclared[0]} is not declared by {target!r} "
                               f"(declared: {', '.join(map(str, dest.ports)) or 'none'})")
        flow = Flow(source, target, ports, str(spec.get("why", "")))
        _check_direction(flow, services, where)
        if any(f.source == source and f.target == target for f in flows):
            raise TierMapError(f"{where}: listed twice; put all its ports in one flow")
        flows.append(flow)
    return tuple(flows)


def _check_direction(flow: Flow, services: dict[str, Service], where: str) -> None:
    src_tier = INTERNET if flow.source == INTERNET else services[flow.source].tier
    dst_tier = services[flow.target].tier
    if flow.source == flow.target:
        raise TierMapError(f"{where}: a service does not need a flow to itself")
    if dst_tier == DATA_TIER and src_tier not in DATA_CLIENT_TIERS:
        raise TierMapError(
            f"{where}: opens the data store {flow.target!r} to the {src_tier} tier; data "
            f"services are reached only from the {', '.join(DATA_CLIENT_TIERS)} tiers")
    if DEPTH[src_tier] >= DEPTH[dst_tier]:
        raise TierMapError(
            f"{where}: goes outward or sideways ({src_tier} → {dst_tier}); flows must point "
            "inward (internet → edge → app/worker/backup → data), so no cycle can open the "
            "data tier towards the edge")
