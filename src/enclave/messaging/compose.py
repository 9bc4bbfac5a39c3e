"""One email, as the send pipeline hands it over: RFC 5322 bytes, multipart/alternative
(the plain-text part first, then the HTML), DKIM-signed by the sender domain's key.

Headers: From (display name and ``from_local@domain``), To, Subject (already one line —
``rendering.render``), Date, Message-ID at the sender domain, MIME-Version, the RFC 8058
unsubscribe pair (``messaging.headers``) and Feedback-ID (``<broadcast>:<account>:
broadcast:enclave``, for mailbox providers' feedback loops; ids only). The ``email``
package's SMTP policy refuses a header value with a line break, so nothing a member or a
person typed can add a header.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
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


def _ascii_address(address: str) -> str:
    """``local@domain`` with an international domain in its IDNA form; :class:`Unsendable`
    for a non-ASCII local part (that needs SMTPUTF8, which this transport does not
    speak yet)."""
    local, _, domain = address.rpartition("@")
    if not local or not domain or not local.isascii():
        raise Unsendable("the address needs SMTPUTF8")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise Unsendable("the address's domain is not a valid name") from None
    return f"{local}@{domain}"


def message(*, domain: str, from_local: str, from_name: str, to: str, rendered: Rendered,
            message_id: str, unsubscribe_url: str | None, feedback_id: str, selector: str,
            private_key_pem: str, now, unsubscribe_mailto: str | None = None,
            ) -> tuple[Envelope, bytes]:
    """The signed message and its envelope. ``message_id`` is the unique part before the
    ``@``; the caller keeps it with the outbox row. Without ``unsubscribe_url`` (a
    transactional message: there is nothing to unsubscribe from) no unsubscribe
    headers; ``unsubscribe_mailto`` adds the mailto address to ``List-Unsubscribe``."""
    sender = f"{from_local}@{domain}"
    recipient = _ascii_address(to)
    if "=?" in from_name or "=?" in recipient:
        raise Unsendable("an encoded word where an address is written")
    mail = EmailMessage(policy=email.policy.SMTP)
    try:
        mail["From"] = formataddr((from_name, sender)) if from_name else sender
        mail["To"] = recipient
        mail["Subject"] = rendered.subject
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = f"<{message_id}@{domain}>"
        if unsubscribe_url is not None:
            for name, value in headers.unsubscribe_headers(
                    unsubscribe_url, unsubscribe_mailto).items():
                mail[name] = value
        mail["Feedback-ID"] = feedback_id
    except ValueError as exc:  # a line break in a value: refused, never folded in
        raise Unsendable(f"a header cannot be written ({type(exc).__name__})") from None
    # The From header must name exactly the sender address, whatever its display name.
    if [a.addr_spec for a in mail["From"].addresses] != [sender]:
        raise Unsendable("the From header does not name the sender address")
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    # Header lines up to RFC 5322's limit (998), not the policy's 78: the email package
    # writes a word longer than the line (an unsubscribe URL) as RFC 2047 encoded words,
    # which mailbox providers do not read as List-Unsubscribe. A line break in a value
    # was refused above, so nothing is folded that a receiver would read differently.
    raw = mail.as_bytes(policy=mail.policy.clone(max_line_length=998))
    signed = dkim.sign(raw, domain=domain, selector=selector,
                       private_key_pem=private_key_pem)
    return Envelope(sender, recipient, message_id), signed
