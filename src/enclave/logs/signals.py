"""Wiring into Celery (task context, flushing, stdout) and the keyring (key references)."""

from __future__ import annotations

import logging

import structlog


def connect() -> None:
    from celery import signals as celery_signals

    celery_signals.setup_logging.connect(_keep_our_logging, weak=False)
    celery_signals.worker_init.connect(_configure_worker, weak=False)
    celery_signals.task_prerun.connect(_task_started, weak=False)
    celery_signals.task_postrun.connect(_task_finished, weak=False)
    _register_key_references()


def _keep_our_logging(**kwargs) -> None:
    """Any receiver of setup_logging stops Celery from configuring logging itself: the
    worker keeps Django's LOGGING (our redacting handlers) and does not redirect stdout."""


def _configure_worker(**kwargs) -> None:
    from enclave.logs.pipeline import configure_app_process

    configure_app_process()


def _task_started(task_id=None, task=None, **kwargs) -> None:
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", ""))
    logging.getLogger("enclave.task").info("task started")


def _task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    from enclave.logs.pipeline import flush_stores

    logging.getLogger("enclave.task").info("task finished: %s", state or "unknown")
    structlog.contextvars.unbind_contextvars("task_id", "task_name")
    flush_stores()


def _register_key_references() -> None:
    """Retiring a ``logs`` key version is refused while segments are still under it."""
    from enclave.keys.references import register_reference_counter

    def count(purpose: str, version: int) -> int:
        if purpose != "logs":
            return 0
        from enclave.logs.store import default_store

        return default_store().key_versions().get(str(version), 0)

    register_reference_counter("logs.segments", count)
