"""The one schedule of periodic jobs. Celery beat reads it (embedded and production alike).

Later issues add retention, key age and restore drills here. Every job takes "now" from
:mod:`enclave.core.clock`, so tests run them under a moved clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    every_seconds: int
    run_at_start: bool = False


SCHEDULE: tuple[Job, ...] = (
    Job("security-controls", "enclave.core.check_controls", every_seconds=15 * 60,
        run_at_start=True),
)


def beat_schedule() -> dict:
    return {job.name: {"task": job.task, "schedule": float(job.every_seconds)} for job in SCHEDULE}
