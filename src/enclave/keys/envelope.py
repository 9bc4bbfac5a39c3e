"""The self-describing ciphertext format (pure functions, no key management).

Binary form::

    ek1:<purpose>:<version>:<12-byte nonce><AES-256-GCM ciphertext and 16-byte tag>

``ek1`` is the format version, ``purpose`` names the data-key family, ``version`` the data
key that encrypted it. The header is authenticated together with the caller's associated
data, so changing any byte of it — or decrypting with other associated data — fails.

Text form (model fields): the same header followed by URL-safe base64 of the rest, so the
purpose and key version of a stored value can be read (and filtered in SQL) without a key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.keys.errors import AuthenticationFailed, CorruptCiphertext, UnsupportedFormat

FORMAT = "ek1"
NONCE_BYTES = 12
TAG_BYTES = 16
_PURPOSE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_VERSION_RE = re.compile(r"[1-9][0-9]{0,8}")
_FORMAT_RE = re.compile(rb"ek[0-9]{1,3}")


@dataclass(frozen=True)
class Envelope:
    """A parsed ciphertext. ``header`` is the exact authenticated prefix."""

    purpose: str
    version: int
    header: bytes
    body: bytes  # nonce + ciphertext + tag


def header_for(purpose: str, version: int) -> bytes:
    return f"{FORMAT}:{purpose}:{version}:".encode("ascii")


def text_prefix(purpose: str, version: int) -> str:
    """The text-form prefix of every value under ``purpose`` / ``version`` (for SQL filters)."""
    return header_for(purpose, version).decode("ascii")


def seal(purpose: str, version: int, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under ``key``; returns the binary envelope."""
    header = header_for(purpose, version)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + aad)


def parse(ciphertext: bytes) -> Envelope:
    """Parse a binary envelope's header. Raises CorruptCiphertext / UnsupportedFormat."""
    if not isinstance(ciphertext, bytes | bytearray | memoryview):
        raise CorruptCiphertext(f"ciphertext must be bytes, got {type(ciphertext).__name__}")
    data = bytes(ciphertext)
    parts = data.split(b":", 3)
    if len(parts) != 4 or not _FORMAT_RE.fullmatch(parts[0]):
        raise CorruptCiphertext("ciphertext is corrupted: it does not start with an Enclave "
                                "header (ek1:<purpose>:<version>:)")
    if parts[0] != FORMAT.encode():
        raise UnsupportedFormat(f"ciphertext format {parts[0].decode()!r} is not supported "
                                f"(this version reads {FORMAT!r})")
    purpose, version = parts[1].decode("ascii", "replace"), parts[2].decode("ascii", "replace")
    if not _PURPOSE_RE.fullmatch(purpose) or not _VERSION_RE.fullmatch(version):
        raise CorruptCiphertext("ciphertext is corrupted: its header names no valid purpose "
                                "and key version")
    body = parts[3]
    if len(body) < NONCE_BYTES + TAG_BYTES:
        raise CorruptCiphertext("ciphertext is corrupted: it is truncated")
    return Envelope(purpose, int(version), data[: len(data) - len(body)], body)


def open_(envelope: Envelope, key: bytes, aad: bytes) -> bytes:
    """Decrypt a parsed envelope. Raises AuthenticationFailed on any mismatch."""
    nonce, ct = envelope.body[:NONCE_BYTES], envelope.body[NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, ct, envelope.header + aad)
    except InvalidTag:
        raise AuthenticationFailed(
            f"ciphertext ({envelope.purpose} key v{envelope.version}) failed authentication: "
            "it was altered, or it belongs to another context (associated data differs, "
            "e.g. copied from another row or column)"
        ) from None


def to_text(ciphertext: bytes) -> str:
    """Binary envelope → text form (header kept readable, body base64url without padding)."""
    env = parse(ciphertext)
    return env.header.decode("ascii") + base64.urlsafe_b64encode(env.body).rstrip(b"=").decode()


def from_text(text: str) -> bytes:
    """Text form → binary envelope. Raises CorruptCiphertext."""
    if not isinstance(text, str):
        raise CorruptCiphertext(f"stored value must be text, got {type(text).__name__}")
    head, sep, body = text.rpartition(":")
    if not sep:
        raise CorruptCiphertext("stored value is corrupted: it is not an Enclave ciphertext")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise CorruptCiphertext("stored value is corrupted: its body is not base64") from None
    try:
        data = (head + sep).encode("ascii") + raw
    except UnicodeEncodeError:
        raise CorruptCiphertext("stored value is corrupted: non-ASCII header") from None
    parse(data)
    return data


def peek_text(text: str) -> tuple[str, int]:
    """(purpose, version) of a stored text value, without decoding the body."""
    parts = text.split(":", 3) if isinstance(text, str) else []
    if (len(parts) != 4 or parts[0] != FORMAT or not _PURPOSE_RE.fullmatch(parts[1])
            or not _VERSION_RE.fullmatch(parts[2])):
        raise CorruptCiphertext("stored value is corrupted: it is not an Enclave ciphertext")
    return parts[1], int(parts[2])
