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

:func:`configured` picks the transport: SMTP when ``ENCLAVE_EMAIL_BACKEND=smtp`` (the
same server as account mail), else the built-in :class:`CaptureTransport`, which keeps
each message sealed in the database so the embedded default shows what would be sent.
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


def configured():
    """The transport the settings ask for (see the module docstring)."""
    from django.conf import settings

    cfg = settings.CONFIG
    if cfg.email_backend == "smtp" and cfg.email_host:
        return SmtpTransport(cfg.email_host, cfg.email_port, username=cfg.email_user,
                             password=settings.EMAIL_HOST_PASSWORD or None,
                             security="starttls" if cfg.email_use_tls else "none")
    return CaptureTransport()
