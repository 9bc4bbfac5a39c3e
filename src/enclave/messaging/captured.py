"""Reading what the capture transport kept (``transports.CaptureTransport``): the headers a
list shows and the two parts a message page shows. The messages are Enclave's own, but
they are parsed defensively all the same — a part that cannot be decoded shows as empty,
never as an error page — and the person's own links (unsubscribe, preferences,
confirmation) are shown without their token: whoever reads captured mail must not be
able to act as the person it was for."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass

SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
                 "List-Unsubscribe-Post", "Feedback-ID")


@dataclass(frozen=True)
class Captured:
    row_id: str
    created_at: object
    broadcast_id: int | None
    headers: dict[str, str]  # SHOWN_HEADERS that are present, decoded
    text: str
    html: str
    signed: bool  # carries a DKIM-Signature header


def _header(message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser cannot read
        return ""
    return "" if value is None else str(value)


def _part(message, subtype: str) -> str:
    try:
        body = message.get_body((subtype,))
        return "" if body is None else body.get_content()
    except (LookupError, ValueError, TypeError, UnicodeError):
        return ""


# The person's own links in a captured mail (one-click unsubscribe, preference centre,
# confirmation) would let whoever reads it act as the person: shown without their token.
_PERSONAL_LINK = re.compile(r"(/(?:unsubscribe|preferences|confirm)/)[A-Za-z0-9._~%=:-]+")
HIDDEN_TOKEN = "(token hidden)"  # noqa: S105 — a placeholder, not a secret


def _hide_tokens(text: str) -> str:
    return _PERSONAL_LINK.sub(rf"\1{HIDDEN_TOKEN}", text)


def read(row, *, bodies: bool = True) -> Captured:
    """``row`` (a ``CapturedMessage``) parsed; its bodies only when ``bodies``."""
    raw = row.raw or b""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return Captured(
        row_id=str(row.row_id), created_at=row.created_at, broadcast_id=row.broadcast_id,
        headers={name: _hide_tokens(value) for name in SHOWN_HEADERS
                 if (value := _header(message, name))},
        text=_hide_tokens(_part(message, "plain")) if bodies else "",
        html=_hide_tokens(_part(message, "html")) if bodies else "",
        signed="DKIM-Signature" in message)
