"""Data-key material: load, unwrap, derive and cache. Internal to enclave.keys.

Callers use :mod:`enclave.keys.api`. Each data key is 32 random bytes, stored only wrapped
by the KEK; from it HKDF derives one AES-256-GCM key and one HMAC-SHA256 key, so no key is
used for two algorithms. Unwrapped material is cached in process memory per
(purpose, version) and checked against the stored wrapped key, so a rotated, retired or
rolled-back key is never used from a stale cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from enclave.keys import services
from enclave.keys.errors import MissingKeyVersion, RetiredKeyVersion, UnknownPurpose
from enclave.keys.models import PURPOSES, DataKey, KeyState

_lock = threading.Lock()


@dataclass(frozen=True)
class Material:
    purpose: str
    version: int
    digest: bytes  # sha256 of the wrapped key it came from
    aead_key: bytes
    mac_key: bytes


_cache: dict[tuple[str, int], Material] = {}


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise UnknownPurpose(f"unknown key purpose {purpose!r}; expected one of "
                             f"{', '.join(PURPOSES)}")
    return purpose


def wrap_context(purpose: str, version: int) -> dict[str, str]:
    """What a wrapped data key is bound to: environment, purpose and version."""
    return {"enclave_env": settings.CONFIG.env, "purpose": purpose, "version": str(version)}


def _derive(raw: bytes, label: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"enclave/{label}/{purpose}".encode()).derive(raw)


def _digest(wrapped) -> bytes:
    return hashlib.sha256(bytes(wrapped)).digest()


def material_from_row(row: DataKey) -> Material:
    """Unwrap (or take from cache) the material of ``row``."""
    if row.state == KeyState.RETIRED:
        raise RetiredKeyVersion(f"{row.purpose} key v{row.version} was retired on "
                                f"{row.retired_at:%Y-%m-%d}; values under it can no longer "
                                "be decrypted")
    digest = _digest(row.wrapped)
    cached = _cache.get((row.purpose, row.version))
    if cached is not None and cached.digest == digest:
        return cached
    raw = services.get_provider().unwrap(row.kek_id, bytes(row.wrapped),
                                         context=wrap_context(row.purpose, row.version))
    material = Material(row.purpose, row.version, digest, _derive(raw, "aead", row.purpose),
                        _derive(raw, "mac", row.purpose))
    with _lock:
        _cache[(row.purpose, row.version)] = material
    return material


# Creates version 1 of a purpose (``actions.create_first_key``, registered by the app's
# ``ready``): the keyring reads keys; creating one is an action, audited like a rotation.
_first_key_factory: Callable[[str], DataKey] | None = None


def register_first_key_factory(factory: Callable[[str], DataKey]) -> None:
    global _first_key_factory
    _first_key_factory = factory


def primary(purpose: str) -> Material:
    """The primary key of ``purpose``, creating version 1 on first use."""
    check_purpose(purpose)
    row = DataKey.objects.filter(purpose=purpose, state=KeyState.PRIMARY).first()
    if row is None:
        if _first_key_factory is None:
            raise MissingKeyVersion(f"{purpose} has no primary key yet (run migrate)")
        row = _first_key_factory(purpose)
    return material_from_row(row)


def version(purpose: str, number: int, *, refresh: bool = False) -> Material:
    """The material of ``purpose`` version ``number``. ``refresh`` re-reads the database."""
    check_purpose(purpose)
    cached = _cache.get((purpose, number))
    if cached is not None and not refresh:
        return cached
    row = DataKey.objects.filter(purpose=purpose, version=number).first()
    if row is None:
        raise MissingKeyVersion(
            f"{purpose} key v{number} does not exist in this keyring (a value from another "
            "deployment, or a database restored without its keys?)")
    return material_from_row(row)


def cached_is_current(material: Material) -> bool:
    """True when the database still holds the wrapped key ``material`` came from."""
    row = DataKey.objects.filter(purpose=material.purpose, version=material.version).first()
    return row is not None and _digest(row.wrapped) == material.digest \
        and row.state != KeyState.RETIRED


def evict(purpose: str, number: int) -> None:
    with _lock:
        _cache.pop((purpose, number), None)


def clear_cache() -> None:
    """Forget every unwrapped key (tests, and after a KEK change)."""
    with _lock:
        _cache.clear()
