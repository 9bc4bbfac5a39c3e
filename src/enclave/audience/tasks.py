"""Periodic segment membership upkeep. Takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.audience import membership


@shared_task(name="enclave.audience.refresh_changed")
def refresh_changed() -> int:
    """Dynamic segments re-evaluated for the people who changed or sent events."""
    return membership.refresh_changed()


@shared_task(name="enclave.audience.refresh_time_dependent")
def refresh_time_dependent() -> int:
    """Segments whose rules depend on "now" re-evaluated in full."""
    return membership.refresh_time_dependent()


@shared_task(name="enclave.audience.send_confirmation")
def send_confirmation(person_id: int, topic_id: int) -> None:
    """Mail a double opt-in link (minted here, in the worker: never in the queue)."""
    from enclave.audience.subscriptions import do_send_confirmation

    do_send_confirmation(person_id, topic_id)
