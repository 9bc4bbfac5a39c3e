"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the
``standardwebhooks`` library: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``). The timestamp
is signed, so a receiver that checks it (the library's ``verify`` allows five minutes)
refuses a replayed request. During a rotation's overlap both secrets sign: the header
carries two signatures, and a receiver holding either secret accepts the request."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 — the format's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(message_id: str, body: bytes, at: dt.datetime, secrets_: list[str]) -> dict:
    """The three headers for ``body`` sent at ``at``, signed with each of ``secrets_``."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets_)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures}
