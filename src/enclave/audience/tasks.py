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
