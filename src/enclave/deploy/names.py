"""Names of everything the local deployment creates. All carry one unique prefix.

``down`` removes only names built here from the prefix recorded in the state file, and
refuses a prefix that does not look like one of ours, so it cannot touch anything else.
"""

from __future__ import annotations

import re
import secrets

PREFIX = re.compile(r"^enc[0-9a-f]{4}$")
FIREWALL = "fw"


def new_prefix() -> str:
    return f"enc{secrets.token_hex(2)}"


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        raise ValueError(f"{prefix!r} is not an Enclave tier prefix (enc + 4 hex digits)")
    return prefix


def namespace(prefix: str, endpoint: str) -> str:
    """Network namespace of an endpoint (a service, ``internet`` or ``fw``)."""
    return f"{check_prefix(prefix)}-{endpoint}"


def table(prefix: str) -> str:
    """The nftables table (family inet) loaded into each of our namespaces."""
    return f"enclave_{check_prefix(prefix)}"


def router_if(prefix: str, link: int) -> str:
    """Firewall-side end of link ``link`` (≤ 15 characters, an interface-name limit)."""
    return f"{check_prefix(prefix)}r{link:02d}"


def endpoint_if(prefix: str, link: int) -> str:
    """Endpoint-side end of link ``link``."""
    return f"{check_prefix(prefix)}e{link:02d}"
