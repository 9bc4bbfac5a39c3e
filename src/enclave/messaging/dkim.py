"""DKIM for sender domains: key pairs, the DNS records to publish, and signing.

Keys are RSA-2048 made by ``cryptography``; signatures are made by ``dkimpy``
(rsa-sha256, relaxed/relaxed), whose RSA step (a pure-Python ``pow``, ~3 ms per message)
is handed to ``cryptography``'s OpenSSL-backed PKCS#1 v1.5 signing over the digest
dkimpy computed (~10× faster; PKCS#1 v1.5 is deterministic, so the signature is
byte-for-byte the one dkimpy would have made — a test checks it). Nothing here is
hand-written cryptography.

A domain has at most one ACTIVE key (it signs) and one PENDING key (made, its record not
yet seen in DNS). Rotation makes a PENDING key under a new selector while the ACTIVE one
keeps signing; once the new record is found the new key takes over and the old one is
retired (its private key deleted) — so there is never a moment when mail is signed by
a key whose record is not published.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

KEY_BITS = 2048
# Signed besides dkimpy's recommended set (RFC 6376 §5.4.1: From, Subject, Date, To,
# Message-ID, MIME-Version, Content-Type, List-Unsubscribe, ...): RFC 8058 asks that
# List-Unsubscribe-Post is covered too.
ALSO_SIGNED = (b"list-unsubscribe-post", b"feedback-id")
# Signed once more than they occur, so nobody can add another one after signing.
OVERSIGNED = (b"from", b"subject", b"to", b"list-unsubscribe", b"list-unsubscribe-post")


def new_key_pair() -> tuple[str, str]:
    """(private key as PKCS#8 PEM, public key as base64 DER for the ``p=`` tag)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode("ascii")


def selector_for(now: dt.datetime, taken) -> str:
    """``enc<yyyymm>`` — with a letter after it when that selector is taken already."""
    base = f"enc{now:%Y%m}"
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        if base + suffix not in taken:
            return base + suffix
    raise ValueError("too many DKIM keys made this month")


def txt_value(public_key: str) -> str:
    """The DKIM record's text for a public key."""
    return f"v=DKIM1; k=rsa; p={public_key}"


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


@dataclass(frozen=True)
class Record:
    """A DNS record to publish: ``required`` ones decide verification; the others are
    advice (SPF and DMARC depend on how the domain's other mail is sent)."""

    type: str
    name: str
    value: str
    purpose: str
    required: bool


def records(domain: str, keys) -> list[Record]:
    """What to publish for ``domain`` with its (pending and active) ``keys``."""
    out = [Record("TXT", record_name(k.selector, domain), txt_value(k.public_key),
                  f"DKIM key {k.selector} ({k.state})", required=True)
           for k in keys]
    out.append(Record("TXT", domain, "v=spf1 a mx ~all",
                      "SPF (a starting point: add the servers that send your mail, e.g. "
                      "your SMTP relay's include:)", required=False))
    out.append(Record("TXT", f"_dmarc.{domain}", "v=DMARC1; p=none; adkim=r; aspf=r",
                      "DMARC (start with p=none, then tighten to quarantine/reject)",
                      required=False))
    return out


class PrivateKey:
    """A private key read once for the messages that one piece of work signs (a batch of
    the send pipeline): dkimpy's parse of the PEM and the OpenSSL key built from it, which
    together cost more than the signature. Held by the caller for that work only — never
    cached in the worker, where a retired key would outlive its deletion. Its repr shows
    nothing of the key."""

    __slots__ = ("_parsed",)

    def __init__(self, pem: str) -> None:
        parsed = _DKIMPY_PARSE_PEM(pem.encode("ascii"))
        parsed[_OPENSSL] = _openssl_key(*(parsed[name] for name in _NUMBERS))
        self._parsed = parsed

    def __repr__(self) -> str:
        return "<dkim.PrivateKey>"


def sign(message: bytes, *, domain: str, selector: str,
         private_key: str | PrivateKey) -> bytes:
    """``message`` (RFC 5322 bytes) with a ``DKIM-Signature`` header in front;
    ``private_key`` a PEM or a :class:`PrivateKey` read from one."""
    signer = dkim.DKIM(message)
    signer.should_sign.update(ALSO_SIGNED)
    signer.add_frozen(OVERSIGNED)
    signature = signer.sign(selector.encode("ascii"), domain.encode("idna"),
                            private_key if isinstance(private_key, PrivateKey)
                            else private_key.encode("ascii"),
                            canonicalize=(b"relaxed", b"relaxed"))
    return signature + message


# --- dkimpy's RSA step through OpenSSL ---

_DKIMPY_RSA_SIGN = dkim.RSASSA_PKCS1_v1_5_sign
_DKIMPY_PARSE_PEM = dkim.parse_pem_private_key
_DIGESTS = {"sha256": hashes.SHA256}
_NUMBERS = ("modulus", "publicExponent", "privateExponent", "prime1", "prime2", "exponent1",
            "exponent2", "coefficient")
_OPENSSL = "enclave.openssl"  # where a PrivateKey keeps its OpenSSL key in dkimpy's dict


def _openssl_key(n: int, e: int, d: int, p: int, q: int, dp: int, dq: int,
                 qi: int) -> rsa.RSAPrivateKey:
    # Our own key (made by ``new_key_pair``, sealed by the keyring, never taken from
    # outside): OpenSSL's consistency check (~40 ms) is skipped rather than the key
    # cached in the worker, where a retired key would outlive its deletion.
    return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n)) \
        .private_key(unsafe_skip_rsa_key_validation=True)


def _rsa_sign(digest, private_key: dict) -> bytes:
    """dkimpy's ``RSASSA_PKCS1_v1_5_sign(hash, private_key)``, computed by OpenSSL."""
    algorithm = _DIGESTS.get(digest.name.lower())
    if algorithm is None:  # not a digest we sign with: dkimpy's own code
        return _DKIMPY_RSA_SIGN(digest, private_key)
    key = private_key.get(_OPENSSL) or _openssl_key(*(private_key[n] for n in _NUMBERS))
    return key.sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm()))


def _parse_pem(private_key) -> dict:
    """dkimpy's ``parse_pem_private_key``, which its ``sign`` calls on the key it is given:
    a :class:`PrivateKey` is read already."""
    if isinstance(private_key, PrivateKey):
        return private_key._parsed
    return _DKIMPY_PARSE_PEM(private_key)


dkim.RSASSA_PKCS1_v1_5_sign = _rsa_sign
dkim.parse_pem_private_key = _parse_pem
