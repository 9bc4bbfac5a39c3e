"""The keyring's public API. Stable: other apps (logs, identity, api, backups) call only this.

``encrypt``/``decrypt`` — AES-256-GCM envelope encryption under the primary data key of a
purpose; the ciphertext names its format, purpose and key version, and the caller's
associated data (``aad``) binds it to its context (decrypting elsewhere fails).

``mac``/``verify_mac`` — keyed HMAC-SHA256 under a purpose's key (token and API-key hashes).

Every failure raises a :class:`~enclave.keys.errors.KeyringError` subclass; nothing ever
returns garbage.
"""

from __future__ import annotations

import hashlib
import hmac

from enclave.keys import envelope, keyring
from enclave.keys.errors import AuthenticationFailed, KeyringError, WrongPurpose

__all__ = ["decrypt", "encrypt", "key_version_of", "mac", "mac_all", "verify_mac"]


def _check_bytes(name: str, value) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise KeyringError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def encrypt(purpose: str, plaintext: bytes, *, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under the primary key of ``purpose``, bound to ``aad``.

    Returns ``ek1:<purpose>:<version>:`` + nonce + ciphertext + tag (bytes). Raises
    UnknownPurpose, KekError (KEK unavailable) or KeyringError (wrong argument types).
    """
    plaintext = _check_bytes("plaintext", plaintext)
    aad = _check_bytes("aad", aad)
    material = keyring.primary(purpose)
    return envelope.seal(purpose, material.version, material.aead_key, plaintext, aad)


def decrypt(purpose: str, ciphertext: bytes, *, aad: bytes) -> bytes:
    """Decrypt a value made by :func:`encrypt` for ``purpose`` with the same ``aad``.

    Raises CorruptCiphertext (malformed/truncated), UnsupportedFormat, WrongPurpose,
    MissingKeyVersion / RetiredKeyVersion, WrongKek / MissingKek (data key cannot be
    unwrapped) or AuthenticationFailed (altered, or other associated data).
    """
    aad = _check_bytes("aad", aad)
    env = envelope.parse(ciphertext)
    keyring.check_purpose(purpose)
    if env.purpose != purpose:
        raise WrongPurpose(f"ciphertext was made for purpose {env.purpose!r}, not {purpose!r}")
    material = keyring.version(purpose, env.version)
    try:
        return envelope.open_(env, material.aead_key, aad)
    except AuthenticationFailed:
        # A cached key may be stale (rolled-back rotation, rewrap); retry once from the table.
        if keyring.cached_is_current(material):
            raise
        return envelope.open_(env, keyring.version(purpose, env.version, refresh=True).aead_key,
                              aad)


def key_version_of(ciphertext: bytes) -> tuple[str, int]:
    """(purpose, key version) named by a ciphertext, without decrypting it."""
    env = envelope.parse(ciphertext)
    return env.purpose, env.version


def mac(purpose: str, message: bytes) -> tuple[int, bytes]:
    """HMAC-SHA256 of ``message`` under the primary key of ``purpose``.

    Returns (key version, 32-byte tag). Store both; verify with :func:`verify_mac`.
    """
    message = _check_bytes("message", message)
    material = keyring.primary(purpose)
    return material.version, hmac.new(material.mac_key, message, hashlib.sha256).digest()


def primary_version(purpose: str) -> int:
    """The version number of ``purpose``'s primary key."""
    return keyring.primary(purpose).version


def mac_many(purpose: str, version: int, messages: list[bytes]) -> list[bytes]:
    """The MAC of each of ``messages`` under ``purpose`` v``version`` (its material read
    once, from the keyring's cache when it can): for values signed with a version fixed
    earlier, checked with :func:`verify_mac`."""
    messages = [_check_bytes("message", message) for message in messages]
    material = keyring.version(purpose, version)
    return [hmac.new(material.mac_key, message, hashlib.sha256).digest()
            for message in messages]


def mac_all(purpose: str, message: bytes) -> list[tuple[int, bytes]]:
    """The tag of ``message`` under every usable (primary and active) version of
    ``purpose``, primary first — for looking a token up by hash across a rotation."""
    return mac_all_many(purpose, [message])[0]


def mac_all_many(purpose: str, messages: list[bytes]) -> list[list[tuple[int, bytes]]]:
    """``mac_all`` of each of ``messages``, reading the keyring once."""
    from enclave.keys.models import DataKey, KeyState

    messages = [_check_bytes("message", message) for message in messages]
    keyring.check_purpose(purpose)
    rows = DataKey.objects.filter(purpose=purpose).exclude(state=KeyState.RETIRED)
    keys = [(row.version, keyring.material_from_row(row).mac_key) for row in
            sorted(rows, key=lambda r: (r.state != KeyState.PRIMARY, -r.version))]
    return [[(version, hmac.new(key, message, hashlib.sha256).digest())
             for version, key in keys] for message in messages]


def verify_mac(purpose: str, version: int, message: bytes, tag: bytes) -> bool:
    """True when ``tag`` is the MAC of ``message`` under ``purpose`` v``version``
    (constant-time comparison). Raises MissingKeyVersion / RetiredKeyVersion when that
    version is not in the keyring — a configuration problem, not a mismatch."""
    message = _check_bytes("message", message)
    tag = _check_bytes("tag", tag)
    material = keyring.version(purpose, version)
    if hmac.compare_digest(hmac.new(material.mac_key, message, hashlib.sha256).digest(), tag):
        return True
    if keyring.cached_is_current(material):
        return False
    fresh = keyring.version(purpose, version, refresh=True)
    return hmac.compare_digest(hmac.new(fresh.mac_key, message, hashlib.sha256).digest(), tag)
