"""Handing signed messages to a mail server. One connection is reused for many messages
(opened on first use, reopened after the server drops it).

Every hand-over ends in one :class:`Outcome`:

* ``sent`` — the server accepted the message (2xx after DATA);
* ``deferred`` — try again later: a 4xx reply, or the connection failed or dropped (the
  message may or may not have been taken: the pipeline keeps its Message-ID, so a
  retry is the same message);
* ``failed`` — a 5xx reply for the recipient or the message: do not retry (a 5xx for the
  recipient is a hard bounce: the pipeline suppresses the address).

An outcome's ``detail`` is the reply code and enhanced status code only: servers echo
the recipient's address in their replies, and outcomes are stored and logged.

The same outcomes come from an email service provider's API (:class:`EspTransport`,
through django-anymail). :func:`configured` picks the transport: SMTP when
``ENCLAVE_EMAIL_BACKEND=smtp`` (the same server as account mail), the provider when
``esp``, else the built-in :class:`CaptureTransport`, which keeps each message sealed in
the database so the embedded default shows what would be sent.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass

SENT, DEFERRED, FAILED = "sent", "deferred", "failed"
_ENHANCED = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class Outcome:
    kind: str
    code: int | None = None
    detail: str = ""
    bounce: bool = False  # a permanent refusal of the recipient's address


def _reply(kind: str, code: int, message: bytes | str, *, bounce: bool = False) -> Outcome:
    raw = message.encode() if isinstance(message, str) else (message or b"")
    enhanced = _ENHANCED.match(raw)
    detail = f"{code} {enhanced.group(1).decode()}" if enhanced else str(code)
    return Outcome(kind, code, detail, bounce)


def _by_code(code: int, message, *, recipient: bool) -> Outcome:
    if 400 <= code < 500:
        return _reply(DEFERRED, code, message)
    return _reply(FAILED, code, message, bounce=recipient and 500 <= code < 600)


class SmtpTransport:
    """SMTP with STARTTLS (``tls``), implicit TLS (``ssl``) or neither (a local relay),
    optional AUTH, one reused connection."""

    def __init__(self, host: str, port: int, *, username: str | None = None,
                 password: str | None = None, security: str = "starttls",
                 timeout: float = 30.0, context: ssl.SSLContext | None = None) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError("security is starttls, ssl or none")
        self.host, self.port, self.timeout = host, port, timeout
        self.username, self.password, self.security = username, password, security
        self.context = context or ssl.create_default_context()
        self._smtp: smtplib.SMTP | None = None
        self.connections = 0  # how many times a connection was opened (tests, metrics)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self.context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                smtp.starttls(context=self.context)
        if self.username:
            smtp.login(self.username, self.password or "")
        self.connections += 1
        return smtp

    def send(self, envelope, raw: bytes) -> Outcome:
        """Hand one message over; never raises for what the server or network does."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.sendmail(envelope.sender, [envelope.recipient], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, message = next(iter(exc.recipients.values()))
            return _by_code(code, message, recipient=True)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return _by_code(exc.smtp_code, exc.smtp_error, recipient=False)
        except smtplib.SMTPResponseException as exc:  # e.g. AUTH or STARTTLS refused
            self.close()
            return _by_code(exc.smtp_code, exc.smtp_error, recipient=False)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            return Outcome(DEFERRED, None, type(exc).__name__)
        return Outcome(SENT, 250, "250")

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


CAPTURE_KEEP = 500  # newest captured messages kept per account


class CaptureTransport:
    """Keeps messages instead of sending them (sealed by the keyring; the newest
    ``CAPTURE_KEEP`` per account)."""

    def send(self, envelope, raw: bytes) -> Outcome:
        from enclave.messaging.models import CapturedMessage

        captured = CapturedMessage(account_id=envelope.account_id,
                                   broadcast_id=envelope.broadcast_id,
                                   person_id=envelope.person_id)
        captured.raw = raw
        captured.save()
        keep = CapturedMessage.objects.filter(account_id=envelope.account_id) \
            .order_by("-created_at", "-pk").values_list("pk", flat=True)[:CAPTURE_KEEP]
        CapturedMessage.objects.filter(account_id=envelope.account_id) \
            .exclude(pk__in=list(keep)).delete()
        return Outcome(SENT, 250, "captured")

    def close(self) -> None:
        return None


# What an ESP's API said about the recipient (anymail's normalised status).
_ESP_REFUSED = frozenset({"rejected", "invalid"})
# Headers the ESP's message keeps from the composed one (the rest the ESP writes itself).
_ESP_HEADERS = ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID")


class EspTransport:
    """Hands each message to an email service provider's API through django-anymail
    (``messaging.esp``), over one reused session. The provider rebuilds the message and
    signs it with the DKIM key it holds for the domain, so the composed message's parts
    and headers are handed over, not its bytes — and the From address is the envelope's
    sender, never re-read from the header. Open and click tracking are turned off where
    the provider takes that setting. Each message carries ``metadata["enclave"]``, the
    envelope's ``ref`` signed (``actions.delivery.signed_ref``), which the provider's
    delivery webhooks bring back (``messaging.webhooks``).

    Outcomes: accepted → ``sent``; the provider refused the recipient (on its own
    suppression list — shared by every account — or invalid) → ``failed``, not a bounce
    of ours (its webhooks say whether it bounced); a 4xx about the request other than
    401/403/408/429 → ``failed``; a rejected credential (401/403: a rotated key must not
    fail the whole queue), 5xx, 408, 429 or no answer → ``deferred``; an answer the
    provider gave with a 2xx that anymail could not read → ``sent`` (it was taken: a
    retry would send it twice). ``detail`` never holds the provider's text (it may quote
    the address)."""

    def __init__(self, backend: str, options: dict, *, tracking_flags: bool = True) -> None:
        from django.core.mail import get_connection

        self.connection = get_connection(backend, fail_silently=False, **options)
        self.connection.open()
        self.tracking_flags = tracking_flags

    def send(self, envelope, raw: bytes) -> Outcome:
        from anymail.exceptions import (
            AnymailAPIError,
            AnymailError,
            AnymailRecipientsRefused,
            AnymailUnsupportedFeature,
        )

        from enclave.messaging.actions.delivery import signed_ref

        message = _esp_message(envelope, raw, self.connection)
        if message is None:
            return Outcome(FAILED, None, "the From header is not the sender")
        message.metadata = {"enclave": signed_ref(envelope.ref)}
        if self.tracking_flags:
            message.track_opens = message.track_clicks = False
        try:
            message.send()
        except AnymailRecipientsRefused:
            return Outcome(FAILED, None, "esp refused recipient")
        except AnymailUnsupportedFeature:
            return Outcome(FAILED, None, "esp unsupported feature")
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            if status and 200 <= status < 300:
                return Outcome(SENT, status, f"esp {status} unread")
            if status and 400 <= status < 500 and status not in (401, 403, 408, 429):
                return Outcome(FAILED, status, f"esp {status}")
            return Outcome(DEFERRED, status, f"esp {status}" if status else "esp unreachable")
        except AnymailError as exc:
            return Outcome(DEFERRED, None, f"esp {type(exc).__name__}"[:40])
        recipient = message.anymail_status.recipients.get(envelope.recipient)
        status = recipient.status if recipient else "unknown"
        if status in _ESP_REFUSED:
            return Outcome(FAILED, None, "esp refused recipient")
        return Outcome(SENT, None, f"esp {status}"[:40])

    def close(self) -> None:
        self.connection.close()


def _esp_message(envelope, raw: bytes, connection):
    """The composed message as a Django email for anymail: From (the envelope's sender
    with the header's display name), To, Subject, both parts and the headers the pipeline
    wrote (``_ESP_HEADERS``); None if anymail would read another From address."""
    import email
    import email.policy
    from email.utils import formataddr

    from anymail.utils import parse_single_address
    from django.core.mail import EmailMultiAlternatives

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    addresses = parsed["From"].addresses
    name = addresses[0].display_name if len(addresses) == 1 else ""
    from_email = formataddr((name, envelope.sender)) if name else envelope.sender
    if parse_single_address(from_email).addr_spec != envelope.sender:
        return None
    message = EmailMultiAlternatives(
        subject=str(parsed["Subject"]), body=parsed.get_body(("plain",)).get_content(),
        from_email=from_email, to=[envelope.recipient], connection=connection,
        headers={header: str(parsed[header]) for header in _ESP_HEADERS if parsed[header]})
    message.attach_alternative(parsed.get_body(("html",)).get_content(), "text/html")
    return message


def configured():
    """The transport the settings ask for (see the module docstring)."""
    from django.conf import settings

    cfg = settings.CONFIG
    if cfg.email_backend == "esp":
        from enclave.messaging import esp

        return EspTransport(esp.ESPS[cfg.esp].backend, esp.connection_options(cfg),
                            tracking_flags=esp.ESPS[cfg.esp].tracking_flags)
    if cfg.email_backend == "smtp" and cfg.email_host:
        return SmtpTransport(cfg.email_host, cfg.email_port, username=cfg.email_user,
                             password=settings.EMAIL_HOST_PASSWORD or None,
                             security="starttls" if cfg.email_use_tls else "none")
    return CaptureTransport()
