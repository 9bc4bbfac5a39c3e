"""Which local addresses the embedded listeners bind to."""

from __future__ import annotations

import os
import socket


def bind_addresses(port: int) -> list[str]:
    """Loopback only by default (IPv4 and, when available, IPv6).

    ENCLAVE_BIND (comma-separated hosts) overrides it, e.g. ``0.0.0.0`` on a single host
    that is its own edge.
    """
    hosts = [h.strip() for h in os.environ.get("ENCLAVE_BIND", "").split(",") if h.strip()]
    if not hosts:
        hosts = ["127.0.0.1"] + (["::1"] if _ipv6_loopback() else [])
    return [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts]


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True
