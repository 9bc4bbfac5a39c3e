"""Identity jobs: daily housekeeping, and the mail that sign-up and password-reset
requests queue. Each takes "now" from enclave.core.clock."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from enclave.identity import actions
from enclave.identity.actions import do_purge_expired_identity_records


@shared_task(name="enclave.identity.purge_expired_records")
def purge_expired_records() -> dict[str, int]:
    return do_purge_expired_identity_records()


@shared_task(name=actions.SEND_ACCOUNT_MAIL, autoretry_for=(SMTPException, OSError),
             retry_backoff=True, max_retries=5)
def send_account_mail(kind: str, email: str) -> None:
    """Send the sign-up or reset mail for ``email`` (``kind`` is ``signup`` or
    ``password_reset``). Returns nothing: the worker logs return values, and the mail
    holds a one-time link. A retry after a failed send mints a fresh link."""
    actions.do_send_account_mail(kind, email)
