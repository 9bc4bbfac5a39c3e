"""Sender domains: what a domain name may be, and asking DNS whether its records are
published (dnspython; the servers in ``ENCLAVE_DNS_SERVERS`` or the system's).

When DNS cannot be asked at all (no resolver, no network, every server failing) the
answer is :class:`DnsUnavailable` — a state the member is told about, not an error: a
self-hosted server on a closed network can still sign mail once its records are known
to be published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings

from enclave.messaging import dkim

LIFETIME_SECONDS = 4.0
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Names that can never be a public sending domain.
_NOT_PUBLIC = ("localhost", "local", "internal", "arpa", "invalid", "onion", "home",
               "lan", "corp", "intranet", "private")


class DnsUnavailable(Exception):
    """DNS could not be asked (the reason is one line, without secrets)."""


class BadDomain(ValueError):
    pass


def clean_domain(value) -> str:
    """The domain in lower-case ASCII (IDNA for international names); :class:`BadDomain`
    with a clear message otherwise."""
    text = str(value or "").strip().lower().rstrip(".")
    if not text:
        raise BadDomain("Give the domain you send from, e.g. news.example.com.")
    if len(text) > 253 or "\x00" in text:
        raise BadDomain("At most 253 characters.")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadDomain("This is not a domain name.") from None
    labels = text.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise BadDomain("This is not a domain name (letters, digits and hyphens, with at "
                        "least one dot).")
    if labels[-1].isdigit():
        raise BadDomain("Give a domain name, not an address.")
    if labels[-1] in _NOT_PUBLIC:
        raise BadDomain("This domain cannot receive mail from the internet.")
    return text


def _resolver() -> dns.resolver.Resolver:
    servers = settings.CONFIG.dns_servers
    try:
        resolver = dns.resolver.Resolver(configure=not servers)
    except dns.resolver.NoResolverConfiguration:
        raise DnsUnavailable("this server has no DNS resolver configured") from None
    if servers:
        resolver.nameservers = [ip for ip, _ in servers]
        resolver.nameserver_ports = dict(servers)
    resolver.lifetime = LIFETIME_SECONDS
    resolver.timeout = LIFETIME_SECONDS / 2
    return resolver


def txt(name: str, resolver=None) -> list[str]:
    """The TXT records at ``name`` (each record's strings joined); ``[]`` when the name
    or the record does not exist. :class:`DnsUnavailable` when DNS cannot answer."""
    resolver = resolver or _resolver()
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.resolver.NoNameservers:
        raise DnsUnavailable("every DNS server failed to answer") from None
    except dns.exception.Timeout:
        raise DnsUnavailable("DNS did not answer in time") from None
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsUnavailable(f"DNS could not be asked ({type(exc).__name__})") from None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def _tags(record: str) -> dict[str, str]:
    out = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip().lower()] = "".join(value.split())
    return out


def publishes_key(records: list[str], public_key: str) -> bool:
    """Whether one of ``records`` is a DKIM record for ``public_key``."""
    return any(_tags(r).get("p") == public_key and _tags(r).get("v", "DKIM1") == "DKIM1"
               for r in records)


@dataclass(frozen=True)
class Check:
    """What DNS said: the selectors whose records are published, and advice."""

    published: frozenset[str]
    spf: bool
    dmarc: bool


def check(domain: str, keys) -> Check:
    """Look up every key's DKIM record, SPF and DMARC for ``domain``.
    :class:`DnsUnavailable` when DNS cannot be asked."""
    resolver = _resolver()
    published = frozenset(
        k.selector for k in keys
        if publishes_key(txt(dkim.record_name(k.selector, domain), resolver), k.public_key))
    spf = any(r.lower().startswith("v=spf1") for r in txt(domain, resolver))
    dmarc = any(r.upper().startswith("V=DMARC1") for r in txt(f"_dmarc.{domain}", resolver))
    return Check(published, spf, dmarc)
