"""Outgoing account mail (sign-up, password reset, invitations): queued by the request,
built and sent by the background worker.

A request calls :func:`enqueue` inside its action's transaction: once the transaction
commits, one Celery job is queued, carrying only ids and addresses — never a token, a
link or a message body (so none sits in the queue or reaches a log). The job, in the
worker, decides what to say, mints any one-time token there, and calls :func:`send`. So a
request does the same work and answers in the same time whatever the mail will say.

The backend is Django's, chosen by ``ENCLAVE_EMAIL_BACKEND``: files under ``var/mail/``
(the embedded default), the console, or SMTP (production). Nothing here logs a body or a
recipient.
"""

from __future__ import annotations

from django.core.mail import send_mail
from django.db import transaction


def enqueue(task: str, **kwargs: str | int) -> None:
    """After the current transaction commits, queue the Celery task named ``task`` with
    ``kwargs`` (ids and addresses only). A rolled-back action queues nothing."""
    if any(not isinstance(v, str | int) for v in kwargs.values()):
        raise TypeError("mail jobs carry ids and addresses only")

    def publish() -> None:
        # The project's Celery app (Redis, or the embedded filesystem queue); a web process
        # imports it, and the apps' task modules, only when it first queues a job.
        from enclave.core.jobs import app

        if task not in app.tasks:
            app.loader.import_default_modules()
        app.tasks[task].apply_async(kwargs=kwargs)

    transaction.on_commit(publish)


def send(to: str, subject: str, body: str) -> None:
    """Send one message now (called by the worker's mail tasks)."""
    send_mail(subject, body, None, [to])
