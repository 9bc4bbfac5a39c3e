"""The Celery application: Redis in production, a broker-less filesystem queue when embedded.

It lives in core so core's own job senders (``core.mail``) can reach it; ``enclave/celery.py``
re-exports it for ``celery -A enclave``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import beat_init, worker_init

from enclave.core import queue_files

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enclave.settings")
queue_files.register()  # the embedded queue's transport (enclave-fs://)

app = Celery("enclave")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs) -> None:
    from enclave.core.schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()


@worker_init.connect
@beat_init.connect
def _refuse_foreign_database(**kwargs) -> None:
    from enclave.core.environment import verify_database_environment

    verify_database_environment()
