"""Where the log store gets its keys: a small protocol with two implementations.

* :class:`KeyringLogKeys` — the deployment keyring (``enclave.keys.api``, purpose ``logs``):
  each segment's random data key is wrapped with ``encrypt("logs", ...)``, and the store's
  anchor and head files carry ``mac("logs", ...)`` tags. Needs Django (the keyring lives
  in the database), so processes write to the store only once Django is ready.
* :class:`MemoryLogKeys` — the in-memory twin for unit tests and the benchmark.

Frames are encrypted locally with AES-256-GCM under the segment key (no keyring call per
record); the keyring is asked once per segment and process.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Iterator
from typing import Protocol


class LogKeys(Protocol):
    """What the store needs: wrap/unwrap a segment key, and MAC small files."""

    name: str

    def available(self) -> bool:
        """True when keys can be used in this process right now."""

    def wrap(self, segment_key: bytes, *, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes: ...

    def mac(self, message: bytes) -> str:
        """A self-describing tag (``<version>:<hex>``) for ``message``."""

    def verify(self, message: bytes, tag: str) -> bool: ...

    def version_of(self, wrapped: bytes) -> str:
        """Which key (version) a wrapped segment key is under — for rotation reports."""


@contextlib.contextmanager
def _keyring_connection() -> Iterator[None]:
    """Use the keyring; off the main thread, close a database connection the use opened.

    Logging happens on any thread (a test server's request threads, a library's helper
    thread); the keyring reads the database, and Django never closes a connection a
    stray thread opened: it would stay open until garbage collection (a ResourceWarning at
    a random later point, and a PostgreSQL test database that cannot be dropped).
    """
    if threading.current_thread() is threading.main_thread():
        yield
        return
    from django.db import connection

    opened_here = connection.connection is None
    try:
        yield
    finally:
        if opened_here and not connection.in_atomic_block:
            connection.close()


class KeyringLogKeys:
    """The deployment keyring, purpose ``logs``."""

    name = "keyring"
    purpose = "logs"

    def available(self) -> bool:
        from django.apps import apps

        return apps.ready

    def wrap(self, segment_key: bytes, *, aad: bytes) -> bytes:
        from enclave.keys import api

        with _keyring_connection():
            return api.encrypt(self.purpose, segment_key, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        from enclave.keys import api

        with _keyring_connection():
            return api.decrypt(self.purpose, wrapped, aad=aad)

    def mac(self, message: bytes) -> str:
        from enclave.keys import api

        with _keyring_connection():
            version, tag = api.mac(self.purpose, message)
        return f"{version}:{tag.hex()}"

    def verify(self, message: bytes, tag: str) -> bool:
        from enclave.keys import api

        version, _, hex_tag = tag.partition(":")
        try:
            with _keyring_connection():
                return api.verify_mac(self.purpose, int(version), message,
                                      bytes.fromhex(hex_tag))
        except ValueError:
            return False

    def version_of(self, wrapped: bytes) -> str:
        from enclave.keys import api

        with _keyring_connection():
            return str(api.key_version_of(wrapped)[1])


class MemoryLogKeys:
    """In-memory twin: one random key per instance (values die with the process)."""

    name = "memory"

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def available(self) -> bool:
        return True

    def wrap(self, segment_key: bytes, *, aad: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        return b"mem1" + nonce + AESGCM(self._key).encrypt(nonce, segment_key, aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._key).decrypt(wrapped[4:16], wrapped[16:], aad)

    def mac(self, message: bytes) -> str:
        return "1:" + hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, message: bytes, tag: str) -> bool:
        return hmac.compare_digest(self.mac(message), tag)

    def version_of(self, wrapped: bytes) -> str:
        return "1"


_default: LogKeys | None = None


def get_log_keys() -> LogKeys:
    """The keys of this deployment's log store (the keyring)."""
    global _default
    if _default is None:
        _default = KeyringLogKeys()
    return _default
