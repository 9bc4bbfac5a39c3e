"""TLS for the embedded server: a local CA, a leaf certificate, and the server context.

The local CA carries a critical NameConstraints extension: it can only ever certify
``localhost``, the configured public host (a DNS name, or exactly that IP address) and
the two loopback addresses, so a user who trusts it in a browser trusts nothing else —
even if its key leaks. A CA without those exact constraints (made by an older version,
or for another public host) is replaced, with a new leaf, on the next ``enclave serve``.

Policy (Mozilla "intermediate", ECDHE + AEAD only): TLS 1.2 and 1.3, no compression,
no renegotiation, no session tickets, groups X25519/P-256/P-384 and the TLS 1.3 suites (via
:data:`OPENSSL_CNF`, which Python's ssl module cannot express). The same constants are
rendered into deploy/nginx/enclave.conf by :mod:`enclave.server.nginx`; tests compare both
with the constants here, and the TLS-1/TLS-2 controls probe the running listener.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enclave.config import Config

logger = logging.getLogger(__name__)
OPENSSL_CNF = Path(__file__).with_name("openssl.cnf")
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
PROTOCOLS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
GROUPS = ("X25519", "P-256", "P-384")
# OpenSSL's SSL_OP_PRIORITIZE_CHACHA (not exported by Python's ssl module): with server
# order, still pick ChaCha20-Poly1305 when the client lists it first (clients without AES
# hardware do), so enforcing our order costs those clients nothing.
OP_PRIORITIZE_CHACHA = 0x0020_0000
LEAF_LIFETIME = dt.timedelta(days=90)
LEAF_RENEW_BEFORE = dt.timedelta(days=30)
CA_LIFETIME = dt.timedelta(days=3650)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ca_key_path(cfg: Config) -> Path:
    """The local CA's private key is a secret: it lives in the secrets directory."""
    return cfg.secrets_dir / "tls-ca.key"


def _host_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def permitted_names(cfg: Config) -> list[x509.GeneralName]:
    """The only names the local CA may certify (its NameConstraints permitted subtrees):
    ``localhost``, the public host — a DNS name (which, per RFC 5280, also covers its
    subdomains), or for an IP address exactly that address (/32, /128) — and
    127.0.0.1/32 and ::1/128."""
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    host_ip = _host_ip(cfg.public_host)
    if host_ip is None and cfg.public_host != "localhost":
        names.append(x509.DNSName(cfg.public_host))
    networks = {ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")}
    if host_ip is not None:
        networks.add(ipaddress.ip_network(host_ip))
    names += [x509.IPAddress(n) for n in sorted(networks, key=lambda n: (n.version, n))]
    return names


def ca_mismatch(cfg: Config) -> str | None:
    """Why the existing local CA cannot stay, or None (it fits, or there is none yet).

    It must carry critical NameConstraints permitting exactly :func:`permitted_names`:
    none at all means it could sign for any domain; others permit a host that is no
    longer configured (or miss the one that is)."""
    if not (cfg.tls_ca.is_file() and ca_key_path(cfg).is_file()):
        return None
    cert = x509.load_pem_x509_certificate(cfg.tls_ca.read_bytes())
    try:
        ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return "it has no name constraints (it could sign a certificate for any domain)"
    permitted = ext.value.permitted_subtrees or []
    if not ext.critical or ext.value.excluded_subtrees \
            or set(permitted) != set(permitted_names(cfg)):
        return (f"its name constraints ({_describe(permitted)}) are not the configured "
                f"names ({_describe(permitted_names(cfg))})")
    return None


def _describe(names) -> str:
    return ", ".join(str(n.value) for n in names) or "none"


def ensure_local_ca(cfg: Config) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the local CA, creating it (P-256, 10 years, name-constrained to
    :func:`permitted_names`) on first use, or replacing one that does not fit
    (:func:`ca_mismatch`; logged as a warning: browsers must trust the new one). The old
    CA's key is overwritten, so it can sign nothing more."""
    key_path = ca_key_path(cfg)
    mismatch = ca_mismatch(cfg)
    if mismatch is None and cfg.tls_ca.is_file() and key_path.is_file():
        cert = x509.load_pem_x509_certificate(cfg.tls_ca.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key  # type: ignore[return-value]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Enclave local"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Enclave local CA")])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=permitted_names(cfg),
                                            excluded_subtrees=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cfg.tls_ca, cert.public_bytes(serialization.Encoding.PEM))
    if mismatch is not None:
        logger.warning(
            "enclave: replaced the local CA %s because %s. The new one may only certify %s; "
            "trust the new %s in your browser and remove the old \"Enclave local CA\" "
            "(its key is gone, it can sign nothing more).",
            cfg.tls_ca, mismatch, _describe(permitted_names(cfg)), cfg.tls_ca)
    return cert, key


def leaf_needs_renewal(cfg: Config) -> bool:
    """True when the leaf is missing, near expiry, or not issued by the current CA (or
    there is no CA that fits the configuration: it is about to be replaced)."""
    if not (cfg.tls_cert.is_file() and cfg.tls_key.is_file() and cfg.tls_ca.is_file()):
        return True
    if ca_mismatch(cfg) is not None:
        return True
    cert = x509.load_pem_x509_certificate(cfg.tls_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(cfg.tls_ca.read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return True
    return cert.not_valid_after_utc - _now() < LEAF_RENEW_BEFORE


def leaf_names(cfg: Config) -> list[x509.GeneralName]:
    """The leaf's subject alternative names: every name the CA permits, as exact names."""
    return [x509.IPAddress(n.value.network_address) if isinstance(n, x509.IPAddress) else n
            for n in permitted_names(cfg)]


def ensure_certificates(cfg: Config) -> bool:
    """Create (or replace, see :func:`ensure_local_ca`) the local CA and issue a leaf
    certificate when it is missing, near expiry or not issued by that CA.

    Returns True when a new leaf was written. Never touches operator-provided files: it is
    only called when ENCLAVE_TLS_CERT/KEY are the embedded defaults.
    """
    if not leaf_needs_renewal(cfg):
        return False
    ca_cert, ca_key = ensure_local_ca(cfg)
    key = ec.generate_private_key(ec.SECP256R1())
    names = leaf_names(cfg)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cfg.public_host)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(cfg.tls_key, _key_pem(key))
    # Only the leaf is served: the CA signs it directly, and a client either has the CA as
    # a trust anchor (then sending it is wasted bytes) or cannot trust it anyway. Scanners
    # flag a chain that contains its own anchor (sslyze: "Received Chain Contains Anchor").
    _write_public(cfg.tls_cert, cert.public_bytes(serialization.Encoding.PEM))
    return True


def server_context(certfile: str | Path, keyfile: str | Path) -> ssl.SSLContext:
    """The server-side SSLContext with Enclave's TLS policy."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = min(PROTOCOLS)
    ctx.maximum_version = max(PROTOCOLS)
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
    # No TLS 1.3 tickets either (OP_NO_TICKET only makes them stateful): each gunicorn
    # worker keeps its own session cache, so a ticket would mostly miss, and a client
    # that races the post-handshake ticket sees resumption that comes and goes.
    ctx.num_tickets = 0
    # Server cipher order (Mozilla's generator says "off" because every suite here is
    # strong; sslyze's intermediate check does not look at it either way). We keep it on:
    # testssl rates "no cipher order" as a HIGH finding, and with PRIORITIZE_CHACHA the
    # client still gets ChaCha20 when it prefers it, so nothing is lost by deciding here.
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | OP_PRIORITIZE_CHACHA
    ctx.load_cert_chain(certfile=str(certfile), keyfile=str(keyfile))
    return ctx
