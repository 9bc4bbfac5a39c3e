"""TOTP (RFC 6238) and recovery codes.

Codes are 6 digits over 30-second steps; one step of clock drift either way is accepted.
Each code is accepted once: the device remembers the highest step it accepted and
refuses that step and earlier ones (replay). Recovery codes: 10, single-use, SHA-256
hashed (they carry 50 random bits, so a fast hash is enough).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import pyotp
import segno

from enclave.core import clock

STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
ISSUER = "Enclave"
_CODE = re.compile(r"^\d{6}$")
_RECOVERY = re.compile(r"^[a-z2-7]{5}-?[a-z2-7]{5}$")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data: URI (the CSP allows ``img-src data:``; no inline script)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def current_step() -> int:
    return int(clock.now().timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * STEP_SECONDS)


def matching_step(secret: str, code: str, last_used_step: int) -> int | None:
    """The time step ``code`` belongs to if valid now and not used before, else None."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    now_step = current_step()
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if step > last_used_step and hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str | None:
    code = code.strip().lower().replace(" ", "")
    if not _RECOVERY.match(code):
        return None
    return code.replace("-", "")


def hash_recovery_code(normalised: str) -> str:
    return hashlib.sha256(f"recovery:{normalised}".encode()).hexdigest()


def looks_like_totp(code: str) -> bool:
    return bool(_CODE.match(code.strip().replace(" ", "")))
