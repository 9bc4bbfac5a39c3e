"""Keyring errors. Every failure is a :class:`KeyringError` whose ``str()`` is one line
that names the problem (never key material or plaintext). Decryption never returns
garbage: it returns the exact plaintext or raises one of these.
"""

from __future__ import annotations

from enclave.config import ConfigError


class KeyringError(Exception):
    """Base class of every keyring failure."""


class CorruptCiphertext(KeyringError):
    """The value is not a well-formed Enclave ciphertext (truncated, bad header, bad encoding)."""


class UnsupportedFormat(CorruptCiphertext):
    """The ciphertext names a format version this code does not know."""


class WrongPurpose(KeyringError):
    """The ciphertext was made for another purpose than the caller asked to decrypt."""


class AuthenticationFailed(KeyringError):
    """AES-GCM authentication failed: the value was altered, or it is being decrypted in
    another context (associated data) than the one it was encrypted for — e.g. a value
    copied from another row or column."""


class MissingKeyVersion(KeyringError):
    """The ciphertext names a key version that this keyring does not hold."""


class RetiredKeyVersion(MissingKeyVersion):
    """The ciphertext names a key version that was retired (its key material destroyed)."""


class UnknownPurpose(KeyringError):
    """The purpose is not one of the keyring's purposes."""


class KekError(KeyringError):
    """The key-encryption key is unavailable or does not match."""


class WrongKek(KekError):
    """A wrapped data key could not be unwrapped: the KEK is not the one that wrapped it."""


class MissingKek(KekError):
    """The KEK that wrapped a data key cannot be found (file removed, KMS key unknown)."""


class KekConfigError(ConfigError, KekError):
    """The KEK provider is configured unsafely or incompletely; names the setting.

    Also a :class:`~enclave.config.ConfigError`, so the CLI and ``serve`` print it as one
    configuration line and refuse to start.
    """


class KeyInUse(KeyringError):
    """A key version cannot be retired while values still use it."""


class RotationError(KeyringError):
    """A rotation or re-encryption step cannot be carried out."""
