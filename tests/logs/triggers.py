"""One trigger per logs audit event type, for tests/core/test_audit.py."""

from __future__ import annotations

import datetime as dt
import logging

from enclave.core import clock
from enclave.core.models import AuditEventType


def _cli(*args: str) -> None:
    from enclave.cli import main

    main(["logs", *args])


def logs_expunged(f) -> None:
    from enclave.logs.actions import do_expunge_logs
    from enclave.logs.pipeline import flush_stores
    from tests.logs.conftest import empty_store

    empty_store()
    logging.getLogger("enclave.tests").info("soon old")
    flush_stores()
    with clock.travel(dt.timedelta(days=100)):
        do_expunge_logs()


TRIGGERS = {
    AuditEventType.LOGS_TAILED: lambda f: _cli("tail", "-n", "1"),
    AuditEventType.LOGS_SEARCHED: lambda f: _cli("search", "--grep", "x"),
    AuditEventType.LOGS_VERIFIED: lambda f: _cli("verify"),
    AuditEventType.LOGS_EXPUNGED: logs_expunged,
}
