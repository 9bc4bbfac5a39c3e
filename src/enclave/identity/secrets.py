"""Sealing MFA secrets at rest — the one place identity encrypts anything.

``seal``/``unseal`` are the interface the rest of identity uses. The target is the
keyring (``enclave.keys``, purpose ``"fields"``); until its public API lands, values are
sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the deployment's secret
key, which lives in the secrets directory, never in the database. Every sealed value
names its format, so switching to the keyring only changes :func:`seal`; :func:`unseal`
keeps reading the older format (and a bulk re-seal can migrate it).
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

LOCAL_FORMAT = "idsk1:"
_AAD = b"enclave.identity.totp"


class SealError(Exception):
    """A sealed value is malformed or does not authenticate."""


def _local_key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"enclave.identity.secrets v1").derive(settings.SECRET_KEY.encode())


def seal(plaintext: str) -> str:
    """Encrypt ``plaintext``; the result starts with its format tag and is never the input."""
    nonce = os.urandom(12)
    ciphertext = AESGCM(_local_key()).encrypt(nonce, plaintext.encode(), _AAD)
    return LOCAL_FORMAT + base64.urlsafe_b64encode(nonce + ciphertext).decode()


def unseal(sealed: str) -> str:
    """Decrypt a value from :func:`seal`. Raises SealError if it was altered or is unknown."""
    if not sealed.startswith(LOCAL_FORMAT):
        raise SealError("unknown sealed-value format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(LOCAL_FORMAT):])
        return AESGCM(_local_key()).decrypt(raw[:12], raw[12:], _AAD).decode()
    except Exception as exc:
        raise SealError("sealed value does not authenticate") from exc
