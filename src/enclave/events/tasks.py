"""Periodic events housekeeping. Takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.events.actions import do_purge_message_ids


@shared_task(name="enclave.events.purge_message_ids")
def purge_message_ids() -> int:
    """Drop client message ids older than the 24-hour idempotency window."""
    return do_purge_message_ids()
