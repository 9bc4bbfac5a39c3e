"""Billing housekeeping: the grace period's end (sending held) and old event ids."""

from __future__ import annotations

from celery import shared_task

from enclave.billing.actions import do_pause_overdue_sending, do_purge_stripe_events


@shared_task(name="enclave.billing.housekeeping")
def housekeeping() -> dict[str, int]:
    return {"held": do_pause_overdue_sending(), "forgotten": do_purge_stripe_events()}
