"""Periodic jobs owned by core. Each takes "now" from enclave.core.clock."""

from __future__ import annotations

from celery import shared_task

from enclave.core import actions, controls


@shared_task(name="enclave.core.check_controls")
def check_controls() -> dict:
    """Run every control against the live deployment and store the results for /security."""
    results = controls.run_all()
    actions.do_record_control_results(results)
    return {r.control_id: r.status for r in results}
