"""Address checks shared by every "is this client in that range?" decision: trusted
proxies (core.audit.client_ip), rate-limit exemptions and API-key IP allowlists."""

from __future__ import annotations

import functools
import ipaddress


@functools.lru_cache(maxsize=4096)
def in_networks(ip: str, networks: tuple[str, ...]) -> bool:
    """True when ``ip`` is an address inside one of ``networks`` (CIDR strings); False for
    anything that does not parse. A pure function of its arguments, cached: parsing the
    networks and the address on every request was a measurable part of an API call
    (benchmarks/bench_api.py)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n) for n in networks)
