"""Transport controls: HTTPS only, TLS versions and suites, security headers.

Each check probes the running deployment from the outside (:mod:`enclave.server.probes`)
and states what it observed. Anything it could not observe is a failure, never a pass.
"""

from __future__ import annotations

import json
import ssl
from urllib.parse import urlsplit

from enclave.core import headers
from enclave.core.controls import Outcome, Probe, control, failed, not_applicable, passed
from enclave.server import probes
from enclave.server.probes import ProbeError, version_name

REFUSED_VERSIONS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
ACCEPTED_VERSIONS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
# TLS 1.2 suites that must be refused, one weakness each: static-RSA key exchange (with
# CBC and with GCM), CBC with ECDHE for either certificate type (SHA-1 and SHA-256 MACs),
# finite-field DHE. RSA-authenticated suites can only be negotiated with an RSA
# certificate (an ECDSA server refuses them regardless of policy); for ECDSA the
# ECDHE-ECDSA CBC suites are the ones that test the policy.
WEAK_TLS12_SUITES = (
    "AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES128-SHA256", "DHE-RSA-AES128-GCM-SHA256",
)
AEAD_MARKERS = ("-GCM-", "-CHACHA20-POLY1305", "-CCM")
# Key-exchange groups probed over TLS 1.3, where the group does not depend on the
# certificate (in TLS 1.2 an ECDSA P-256 certificate also needs P-256 offered).
ACCEPTED_GROUPS = ("X25519", "prime256v1", "secp384r1")
REFUSED_GROUPS = ("secp521r1", "X448", "ffdhe2048")
PAGE_PATH = "/pricing?x=1"
API_PATH = "/api/v1/health"
MISSING_PATH = "/.well-known/enclave-control-probe-404"
PROBLEM_JSON = "application/problem+json"


@control("HTTPS-1", claim="Plain-HTTP page requests get a 301 to the same https:// URL",
         public="Every page is served over HTTPS; plain HTTP only redirects.")
def check_http_pages_redirect(probe: Probe) -> Outcome:
    if not probe.http_url:
        return not_applicable("no plain-HTTP listener is configured")
    url = probe.http_url.rstrip("/") + PAGE_PATH
    try:
        resp = probes.request(probe, url)
    except ProbeError as exc:
        return failed(str(exc))
    expected = _https_origin(probe) + PAGE_PATH
    location = resp.header("Location")
    evidence = f"GET {url} (Host: {probe.host}) -> {resp.status}, Location: {location}"
    if resp.status == 301 and location == expected:
        return passed(evidence)
    return failed(f"{evidence}; expected 301 to {expected}")


@control("HTTPS-2", claim="Plain-HTTP API requests are refused with problem+json, not redirected",
         public="The API never answers over plain HTTP, so credentials are not accepted in clear.")
def check_http_api_refused(probe: Probe) -> Outcome:
    if not probe.http_url:
        return not_applicable("no plain-HTTP listener is configured")
    url = probe.http_url.rstrip("/") + API_PATH
    try:
        # Deliberately without a credential: one sent here would be recorded as exposed.
        resp = probes.request(probe, url, accept="application/json")
    except ProbeError as exc:
        return failed(str(exc))
    content_type = (resp.header("Content-Type") or "").split(";")[0].strip()
    problem_type = _problem_type(resp.body)
    evidence = (f"GET {url} -> {resp.status}, Content-Type: {content_type or '-'}, "
                f"type: {problem_type or '-'}, Location: {resp.header('Location') or '-'}")
    ok = (
        400 <= resp.status < 500
        and resp.header("Location") is None
        and content_type == PROBLEM_JSON
        and (problem_type or "").endswith("/problems/https-required")
    )
    return passed(evidence) if ok else failed(evidence)


@control("TLS-1", claim="HTTPS accepts TLS 1.2 and 1.3 only; TLS 1.0 and 1.1 are refused",
         public="Connections use TLS 1.2 or 1.3; older protocol versions are refused.")
def check_tls_versions(probe: Probe) -> Outcome:
    seen: list[str] = []
    problems: list[str] = []
    try:
        for version in REFUSED_VERSIONS:
            # SECLEVEL=0: make sure this client really offers the old version.
            hs = probes.handshake(probe, version=version, ciphers=probes.LEGACY_CIPHERS)
            seen.append(f"{version_name(version)}: {hs.describe()}")
            if hs.established:
                problems.append(f"{version_name(version)} was accepted")
        for version in ACCEPTED_VERSIONS:
            hs = probes.handshake(probe, version=version)
            seen.append(f"{version_name(version)}: {hs.describe()}")
            if not hs.established:
                problems.append(f"{version_name(version)} was refused")
    except ProbeError as exc:
        return failed("; ".join([*seen, str(exc)]))
    evidence = f"{probe.https_url}: " + "; ".join(seen)
    return failed(f"{evidence} — {', '.join(problems)}") if problems else passed(evidence)


@control("TLS-2", claim="TLS uses ECDHE key exchange with AEAD suites only, no compression",
         public="Only strong, forward-secret cipher suites are accepted.")
def check_tls_suites(probe: Probe) -> Outcome:
    seen: list[str] = []
    problems: list[str] = []
    try:
        for suite in WEAK_TLS12_SUITES:
            hs = probes.handshake(probe, version=ssl.TLSVersion.TLSv1_2,
                                  ciphers=f"{suite}:@SECLEVEL=0")
            seen.append(f"TLSv1.2 only {suite}: {hs.describe()}")
            if hs.established:
                problems.append(f"{suite} was accepted")
        problems += _check_default_suites(probe, seen)
        problems += _check_groups(probe, seen)
    except ProbeError as exc:
        return failed("; ".join([*seen, str(exc)]))
    evidence = f"{probe.https_url}: " + "; ".join(seen)
    return failed(f"{evidence} — {', '.join(problems)}") if problems else passed(evidence)


@control("HDR-1", claim="HSTS (2 years, subdomains) and the security headers on every response",
         public="Browsers are told to use HTTPS only and to apply strict content policies.")
def check_security_headers(probe: Probe) -> Outcome:
    base = probe.https_url.rstrip("/")
    targets = (("page", "/", "text/html", 200), ("API", API_PATH, "application/json", 200),
               ("404", MISSING_PATH, "text/html", 404))
    seen: list[str] = []
    problems: list[str] = []
    for label, path, accept, status in targets:
        try:
            resp = probes.request(probe, base + path, accept=accept)
        except ProbeError as exc:
            return failed("; ".join([*seen, str(exc)]))
        seen.append(f"{label} {path} -> {resp.status}")
        if resp.status != status:
            problems.append(f"{label}: expected status {status}, got {resp.status}")
        problems += [f"{label}: {p}" for p in header_problems(resp)]
    evidence = f"{base}: " + ", ".join(seen)
    if problems:
        return failed(f"{evidence} — {'; '.join(problems)}")
    hsts = resp.header("Strict-Transport-Security")
    return passed(f"{evidence}; all of {len(headers.REQUIRED)} required headers present; "
                  f"HSTS: {hsts}; CSP without 'unsafe-inline', frame-ancestors 'none'")


def header_problems(resp: probes.Response) -> list[str]:
    """What is wrong with one response's security headers (empty when nothing is)."""
    problems = [f"missing {name}" for name in headers.REQUIRED if resp.header(name) is None]
    hsts = resp.header("Strict-Transport-Security")
    if hsts is not None:
        directives = [d.strip().lower() for d in hsts.split(";")]
        max_age = next((d.split("=", 1)[1].strip('" ') for d in directives
                        if d.startswith("max-age=")), "")
        if not max_age.isdigit() or int(max_age) < headers.HSTS_MAX_AGE:
            problems.append(f"HSTS max-age {max_age or 'missing'} < {headers.HSTS_MAX_AGE}")
        if "includesubdomains" not in directives:
            problems.append("HSTS without includeSubDomains")
    csp = resp.header("Content-Security-Policy")
    if csp is not None:
        directives = {}
        for part in csp.split(";"):
            name, _, value = part.strip().partition(" ")
            directives[name.lower()] = value.strip()
        if "'unsafe-inline'" in csp.lower():
            problems.append("CSP allows 'unsafe-inline'")
        if directives.get("frame-ancestors") != "'none'":
            problems.append(f"CSP frame-ancestors is {directives.get('frame-ancestors')!r}, "
                            "not 'none'")
    return problems


def _check_default_suites(probe: Probe, seen: list[str]) -> list[str]:
    problems = []
    for label, version in (("default", None), ("TLSv1.2 default", ssl.TLSVersion.TLSv1_2)):
        hs = probes.handshake(probe, version=version)
        seen.append(f"{label}: {hs.describe()}, compression {hs.compression or 'none'}")
        if not hs.established:
            problems.append(f"{label} handshake refused")
            continue
        if not _strong(hs):
            problems.append(f"{label} negotiated {hs.protocol} {hs.cipher}")
        if hs.compression:
            problems.append(f"{label} negotiated compression {hs.compression}")
    return problems


def _check_groups(probe: Probe, seen: list[str]) -> list[str]:
    problems = []
    for group in (*ACCEPTED_GROUPS, *REFUSED_GROUPS):
        hs = probes.handshake(probe, version=ssl.TLSVersion.TLSv1_3, group=group)
        seen.append(f"TLSv1.3 only group {group}: {'accepted' if hs.established else 'refused'}")
        if hs.established != (group in ACCEPTED_GROUPS):
            problems.append(f"group {group} was {'accepted' if hs.established else 'refused'}")
    return problems


def _strong(hs: probes.Handshake) -> bool:
    if hs.protocol == "TLSv1.3":
        return True
    cipher = hs.cipher or ""
    return cipher.startswith("ECDHE-") and any(m in cipher for m in AEAD_MARKERS)


def _https_origin(probe: Probe) -> str:
    """``https://<probe.host>[:port]``: where a redirect for this deployment must point."""
    port = urlsplit(probe.https_url).port
    host = f"[{probe.host}]" if ":" in probe.host else probe.host
    return f"https://{host}" + (f":{port}" if port not in (None, 443) else "")


def _problem_type(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    value = doc.get("type") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None
