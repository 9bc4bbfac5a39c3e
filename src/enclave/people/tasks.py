"""Periodic people housekeeping. Takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.people.actions import do_purge_expired_imports


@shared_task(name="enclave.people.purge_expired_imports")
def purge_expired_imports() -> int:
    """Held CSV imports past their hold time are deleted."""
    return do_purge_expired_imports()
