"""Accounts jobs: the invitation mail queued by ``do_invite_member``."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from enclave.accounts import actions


@shared_task(name=actions.SEND_INVITATION, autoretry_for=(SMTPException, OSError),
             retry_backoff=True, max_retries=5)
def send_invitation(invitation_id: int) -> None:
    """Mint the invitation's link and mail it. Returns nothing (the worker logs return
    values; the mail holds the link)."""
    actions.do_send_invitation(invitation_id)
