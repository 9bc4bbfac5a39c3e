"""One email, as the send pipeline hands it over: RFC 5322 bytes, multipart/alternative
(the plain-text part first, then the HTML), DKIM-signed by the sender domain's key.

Headers: From (display name and ``from_local@domain``), To, Subject (already one line —
``rendering.render``), Date, Message-ID at the sender domain, the RFC 8058 unsubscribe
pair (``messaging.headers``), Feedback-ID (``<broadcast>:<account>:broadcast:enclave``,
for mailbox providers' feedback loops; ids only), MIME-Version and Content-Type.

Written out here rather than through ``email.message.EmailMessage``, whose header
parsing and refolding cost more than everything else a message needs (the pipeline's
hottest path); the ``email`` package still does what has rules: quoting and encoding a
display name (``formataddr``), encoded words for a non-ASCII or over-long subject
(``email.header``), parsing the From header to check it names exactly the sender. A
header value with a line break or any other control character is refused
(:class:`Unsendable`), never written or folded in, so nothing a member or a person typed
can add a header; the values that are links or ids are written as they are, never as
encoded words (mailbox providers read ``List-Unsubscribe`` raw). Both parts are
quoted-printable UTF-8 (``binascii``), so the MIME boundary — which starts with ``=_`` —
can never occur in them.
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import re
import secrets
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime, formataddr

from enclave.messaging import dkim, headers
from enclave.messaging.rendering import Rendered


class Unsendable(ValueError):
    """This recipient's address cannot be written into a message (one line, no address)."""


@dataclass(frozen=True)
class Envelope:
    """Who a message is from and to, as the SMTP transaction needs them."""

    sender: str
    recipient: str
    message_id: str
    # Whose message it is (ids; the capture transport files it under them).
    account_id: int | None = None
    broadcast_id: int | None = None
    person_id: int | None = None
    # Which row it was sent for ("b<outbox id>" / "t<transactional id>"): an ESP's
    # delivery webhooks bring it back (``messaging.webhooks``).
    ref: str = ""


# An address as written here: a dot-atom local part (RFC 5322 §3.2.3) at an ASCII domain.
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f\u2028\u2029]")
LINE_LIMIT = 998  # RFC 5322 §2.1.1


def _ascii_address(address: str) -> str:
    """``local@domain`` with an international domain in its IDNA form; :class:`Unsendable`
    for a non-ASCII local part (that needs SMTPUTF8, which this transport does not
    speak yet) or one that is not a plain dot-atom."""
    local, _, domain = address.rpartition("@")
    if not local or not domain or not local.isascii():
        raise Unsendable("the address needs SMTPUTF8")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise Unsendable("the address's domain is not a valid name") from None
    if not _ADDRESS.fullmatch(f"{local}@{domain}"):
        raise Unsendable("the address cannot be written into a header")
    return f"{local}@{domain}"


def _header(name: str, value: str, *, encodable: bool = False) -> str:
    """``Name: value`` and its line end. ``encodable``: a value that is not ASCII or does
    not fit on one line is written as RFC 2047 encoded words (else it is refused)."""
    if _CONTROL.search(value):
        raise Unsendable(f"a header cannot be written ({name}: a line break or control "
                         "character)")
    if value.isascii() and len(name) + 2 + len(value) <= LINE_LIMIT:
        return f"{name}: {value}\r\n"
    if not encodable:
        raise Unsendable(f"a header cannot be written ({name}: too long or not ASCII)")
    folded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n"


@functools.lru_cache(maxsize=256)
def _from(from_name: str, sender: str) -> str:
    # The same for every message of a broadcast: worked out once per worker.
    if _CONTROL.search(from_name):
        raise Unsendable("a header cannot be written (From: a line break or control "
                         "character)")
    value = formataddr((from_name, sender)) if from_name else sender
    # The From header must name exactly the sender address, whatever its display name.
    parsed = email.policy.SMTP.header_factory("From", value)
    if [a.addr_spec for a in parsed.addresses] != [sender]:
        raise Unsendable("the From header does not name the sender address")
    return _header("From", value, encodable=False)


def _part(subtype: str, body: str) -> bytes:
    text = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(text, istext=True).replace(b"\n", b"\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii") \
        + encoded + b"\r\n"  # this line end belongs to the boundary after it


def message(*, domain: str, from_local: str, from_name: str, to: str, rendered: Rendered,
            message_id: str, unsubscribe_url: str | None, feedback_id: str, selector: str,
            private_key: str | dkim.PrivateKey, now, unsubscribe_mailto: str | None = None,
            ) -> tuple[Envelope, bytes]:
    """The signed message and its envelope. ``message_id`` is the unique part before the
    ``@``; the caller keeps it with the outbox row. Without ``unsubscribe_url`` (a
    transactional message: there is nothing to unsubscribe from) no unsubscribe
    headers; ``unsubscribe_mailto`` adds the mailto address to ``List-Unsubscribe``."""
    sender = f"{from_local}@{domain}"
    recipient = _ascii_address(to)
    if "=?" in from_name or "=?" in recipient:
        raise Unsendable("an encoded word where an address is written")
    lines = [_from(from_name, sender), _header("To", recipient),
             _header("Subject", rendered.subject, encodable=True),
             _header("Date", format_datetime(now)),
             _header("Message-ID", f"<{message_id}@{domain}>")]
    if unsubscribe_url is not None:
        lines += [_header(name, value) for name, value in headers.unsubscribe_headers(
            unsubscribe_url, unsubscribe_mailto).items()]
    boundary = f"=_{secrets.token_hex(16)}"
    lines += [_header("Feedback-ID", feedback_id), "MIME-Version: 1.0\r\n",
              f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n', "\r\n"]
    separator = f"--{boundary}\r\n".encode("ascii")
    raw = b"".join([
        "".join(lines).encode("ascii"),
        separator, _part("plain", rendered.text),
        separator, _part("html", rendered.html),
        f"--{boundary}--\r\n".encode("ascii")])
    signed = dkim.sign(raw, domain=domain, selector=selector, private_key=private_key)
    return Envelope(sender, recipient, message_id), signed
