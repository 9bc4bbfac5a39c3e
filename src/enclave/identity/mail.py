"""Outgoing identity emails (sign-up, reset, invitations) through Django's email backend.

The backend is chosen by ``ENCLAVE_EMAIL_BACKEND``: files under ``var/mail/`` (embedded
default), the console, or SMTP (production). Sent after the transaction commits, so a
rolled-back action never emails a link that does not work.
"""

from __future__ import annotations

from django.core.mail import send_mail
from django.db import transaction


def send_after_commit(to: str, subject: str, body: str) -> None:
    transaction.on_commit(lambda: send_mail(subject, body, None, [to]))
