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
import idna
from django.conf import settings

from enclave.messaging import dkim

LIFETIME_SECONDS = 4.0
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Names that can never be a public sending domain (and would send DNS questions about
# internal names to an internal resolver).
_NOT_PUBLIC = ("localhost", "local", "internal", "arpa", "invalid", "onion", "home",
               "lan", "corp", "intranet", "private", "test", "localdomain", "svc",
               "cluster")
# The longest DKIM record name is "<selector ≤ 10>._domainkey.<domain>" and a DNS name
# is at most 253 characters: a longer domain could never be verified.
MAX_DOMAIN = 253 - len("enc202612z._domainkey.")


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
    if len(text) > MAX_DOMAIN or "\x00" in text:
        raise BadDomain(f"At most {MAX_DOMAIN} characters.")
    try:  # IDNA 2008 with UTS 46 mapping, as browsers and mail servers read names
        text = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise BadDomain("This is not a domain name.") from None
    if len(text) > MAX_DOMAIN:
        raise BadDomain(f"At most {MAX_DOMAIN} characters (in its ASCII form).")
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


_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _tags(record: str) -> dict[str, str] | None:
    """A DKIM record's tags (RFC 6376 §3.6.1), or None when it is not a valid record:
    ``v=`` first when present, well-formed tag names, no tag twice."""
    out: dict[str, str] = {}
    for index, part in enumerate(p for p in record.split(";") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not _TAG_NAME.match(key) or key in out or (key == "v" and index):
            return None
        out[key] = "".join(value.split())
    return out


def publishes_key(records: list[str], public_key: str) -> bool:
    """Whether one of ``records`` is a valid DKIM record for ``public_key`` (a receiver
    would use it: ``v=DKIM1`` if given, ``k=rsa`` if given)."""
    for record in records:
        tags = _tags(record)
        if tags and tags.get("p") == public_key and tags.get("v", "DKIM1") == "DKIM1" \
                and tags.get("k", "rsa") == "rsa":
            return True
    return False


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
