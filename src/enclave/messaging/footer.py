"""The postal-address footer every broadcast and test carries — anti-spam law in most
places (CAN-SPAM's "valid physical postal address", and the like) asks marketing mail to
say where the sender is. The account's address (``Account.postal_address``, set on the
sender domains page) goes at the end of both parts, escaped in the HTML."""

from __future__ import annotations

import dataclasses
import html
import unicodedata

from django.core.exceptions import ValidationError

MAX_LINES, MAX_LENGTH = 5, 300
ADDRESS_RULE = (f"At most {MAX_LINES} lines and {MAX_LENGTH} characters, without control "
                "characters.")


def clean_address(raw) -> str:
    """The address as stored: lines stripped, empty ones dropped (\"\" clears it)."""
    if not isinstance(raw, str):
        raise ValidationError({"postal_address": ADDRESS_RULE})
    lines = [" ".join(line.split()) for line in raw.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    cleaned = "\n".join(lines)
    if len(lines) > MAX_LINES or len(cleaned) > MAX_LENGTH or any(
            unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\n"
            for ch in cleaned):
        raise ValidationError({"postal_address": ADDRESS_RULE})
    return cleaned


def add(rendered, address: str):
    """``rendered`` with ``address`` at the end of its plain-text and HTML parts (as it
    is when there is no address)."""
    if not address:
        return rendered
    lines = address.split("\n")
    text = rendered.text.rstrip("\n") + "\n\n-- \n" + "\n".join(lines) + "\n"
    block = ('<p style="font-size:11px;color:#666666;text-align:center" '
             'class="postal-address">' + "<br>".join(html.escape(line) for line in lines)
             + "</p>")
    at = rendered.html.lower().rfind("</body>")
    body = (rendered.html[:at] + block + rendered.html[at:]) if at >= 0 \
        else rendered.html + block
    return dataclasses.replace(rendered, text=text, html=body)
