"""Periodic identity housekeeping. Takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.identity.actions import do_purge_expired_identity_records


@shared_task(name="enclave.identity.purge_expired_records")
def purge_expired_records() -> dict[str, int]:
    return do_purge_expired_identity_records()
