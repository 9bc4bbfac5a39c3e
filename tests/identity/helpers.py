"""Shared helpers for identity tests: members with accounts, signing in, TOTP codes."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pyotp
from django.test import Client

from enclave.accounts.models import Account, Membership
from enclave.core import clock
from enclave.identity import mfa
from enclave.identity.models import Member

PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a different, longer passphrase 7"


@contextmanager
def mailing():
    """Run the mail jobs a request queues, here and now: the on-commit callbacks that
    queue them run inside the test transaction, and Celery runs each job in-process
    (eagerly) — the code the worker runs, without a broker."""
    from django.test import TestCase

    from enclave.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved
        _forget_connections(app)


def last_link(path_prefix: str) -> str:
    """The token of the last emailed link starting with ``path_prefix``."""
    from django.core import mail

    return re.search(re.escape(path_prefix) + r"(\S+)", mail.outbox[-1].body)[1]


def https_client(**kwargs) -> Client:
    from tests.conftest import HttpsClient

    return HttpsClient(**kwargs)


def make_member(email: str = "jane@example.com", password: str = PASSWORD,
                account: Account | None = None, account_name: str = "Acme",
                role: str = "owner") -> Member:
    member = Member(email=email)
    member.set_password(password)
    member.save()
    account = account or Account.objects.create(name=account_name)
    Membership.objects.create(member=member, account=account, role=role)
    return member


def log_in(client: Client, email: str = "jane@example.com", password: str = PASSWORD,
           **extra):
    return client.post("/app/login/", {"email": email, "password": password}, **extra)


def enable_mfa(client: Client) -> tuple[str, list[str]]:
    """Enrol TOTP through the pages; returns (secret, recovery codes)."""
    page = client.get("/app/mfa/setup/")
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page.text)[1]
    done = client.post("/app/mfa/setup/", {"code": totp_now(secret)})
    codes = re.findall(r"<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>", done.text)
    return secret, codes


def totp_now(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((mfa.current_step() + offset_steps) * mfa.STEP_SECONDS)


def wrong_code(secret: str) -> str:
    """A 6-digit code that is not valid now (nor one step either side)."""
    valid = {totp_now(secret, offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333")
                if code not in valid)


def strip_volatile(html: str) -> str:
    """Remove per-response tokens (CSRF, CSP nonce) so two pages can be compared."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', html)
    return re.sub(r'nonce="[^"]+"', 'nonce=""', html)


def now():
    return clock.now()


class JobQueue:
    """The Celery queue as the worker sees it (see :func:`job_queue`)."""

    def __init__(self, app) -> None:
        self.app = app

    def take(self) -> list[tuple[str, dict]]:
        """Every waiting job as (task name, kwargs), removed from the queue."""
        import queue

        jobs = []
        with self.app.connection_for_read() as conn, conn.SimpleQueue("celery") as waiting:
            while True:
                try:
                    message = waiting.get(block=False)
                except queue.Empty:
                    return jobs
                args, kwargs, _ = message.decode()
                assert args == []
                jobs.append((message.headers["task"], kwargs))
                message.ack()

    def run(self, jobs: list[tuple[str, dict]]) -> None:
        """Run ``jobs`` as the worker would (in this process, errors raised)."""
        for name, kwargs in jobs:
            self.app.tasks[name].apply(kwargs=kwargs, throw=True)


@contextmanager
def job_queue(folder):
    """Publish jobs for real — Celery's own publishing, on the embedded mode's filesystem
    transport, in ``folder`` — instead of running them eagerly; yields a JobQueue."""
    from enclave.celery import app

    for sub in ("messages", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(broker_url="enclave-fs://", task_always_eager=False,
                    broker_transport_options={
                        "data_folder_in": str(folder / "messages"),
                        "data_folder_out": str(folder / "messages"),
                        "control_folder": str(folder / "control"), "store_processed": False})
    app.loader.import_default_modules()
    _forget_connections(app)
    try:
        yield JobQueue(app)
    finally:
        app.conf.update(saved)
        _forget_connections(app)


def _forget_connections(app) -> None:
    # The app caches its connection and producer pools (even eager calls create them):
    # forget them whenever the broker changes, or publishes would go to the previous one.
    # (kombu keeps the pools themselves, per broker and options, for the next time.)
    app._pool = None
    app.amqp._producer_pool = None


def sql_shape(sql: str) -> str:
    """A query with its literal values blanked, to compare what two requests asked."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r'"s\d+_x\d+"', "<savepoint>", sql)
    return re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
