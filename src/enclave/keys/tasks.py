"""Periodic keyring jobs. Each takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.keys import actions


@shared_task(name="enclave.keys.rotate_expired_keys")
def rotate_expired_keys() -> dict:
    """Rotate every data key (and a file KEK) older than ENCLAVE_KEY_MAX_AGE_DAYS."""
    return actions.do_rotate_expired_keys(actor=None)
