"""The send pipeline's worker job. Takes "now" from enclave.core.clock."""

from __future__ import annotations

import time

from celery import shared_task

from enclave.core import clock
from enclave.messaging import pipeline, transactional, transports

BUDGET_SECONDS = 20.0  # then the job ends; the schedule starts the next one


@shared_task(name="enclave.messaging.send_outbox")
def send_outbox() -> dict[str, int]:
    """Queue the scheduled broadcasts that are due, then send due messages — in turn a
    batch of transactional ones (``POST /api/v1/messages``) and one of broadcasts' —
    until none is due or the time budget is spent. Several workers may run it at once:
    claims never overlap."""
    from enclave.messaging.actions import start_due_broadcasts

    start_due_broadcasts()  # scheduled broadcasts whose time has come are queued first
    transport, totals = transports.configured(), {}
    deadline = time.monotonic() + BUDGET_SECONDS
    try:
        while time.monotonic() < deadline:
            # One batch of each in turn: a flood of transactional messages goes first but
            # never stops broadcasts.
            counts = transactional.run_once(transport)
            for state, n in pipeline.run_once(transport).items():
                counts[state] = counts.get(state, 0) + n
            if not counts:
                # Nothing to claim now; a throttled domain's next slot may be near.
                slot = pipeline.next_throttled_slot()
                wait = None if slot is None else (slot - clock.now()).total_seconds()
                if wait is None or wait > deadline - time.monotonic():
                    break
                pipeline.sleep(max(wait, 0))
                continue
            for state, n in counts.items():
                totals[state] = totals.get(state, 0) + n
    finally:
        transport.close()
    return totals
