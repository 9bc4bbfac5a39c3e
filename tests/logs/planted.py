"""Secrets generated fresh for each run (nothing secret is stored in the repository)."""

from __future__ import annotations

import secrets
import string

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALNUM = string.ascii_letters + string.digits


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass Luhn."""
    for check in "0123456789":
        candidate = prefix + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def card_number() -> str:
    return luhn_complete("4" + "".join(secrets.choice(string.digits) for _ in range(14)))


def iban() -> str:
    bban = "WEST" + "".join(secrets.choice(string.digits) for _ in range(14))
    numeric = "".join(str(int(ch, 36)) for ch in bban + "GB00")
    return f"GB{98 - int(numeric) % 97:02d}{bban}"


def enclave_key() -> str:
    return "enc_test_" + "".join(secrets.choice(ALNUM) for _ in range(32))


def jwt() -> str:
    import base64
    import json

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return (f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'sub': secrets.token_hex(8)})}."
            f"{secrets.token_urlsafe(32)}")


def pem_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]
