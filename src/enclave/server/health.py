"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work), for the edge,
the Kubernetes probes and the fault drill.

Both are public, cheap and say nothing internal: ``/readyz`` names each check with
``ok``, ``failing`` or ``not configured`` — never a host, an error text or a version (the
reason of a failure goes to the server's own log). Checks: the database answers and, on
PostgreSQL, takes writes (not a replica in recovery); every migration is applied; the
keyring can key a MAC; Redis answers when it is configured (if not, the process still
serves — rate limits fall back to per-process counters — so it is ``degraded``, not
unready: taking every app server out of service for Redis would be the outage). A
process runs the checks at
most once per :data:`CACHE_SECONDS` (a flood of probes costs one check a second), and
remembers "migrations applied" once true (they cannot become unapplied under it).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

log = logging.getLogger("enclave.health")
CACHE_SECONDS = 1.0
OK, FAILING, NOT_CONFIGURED = "ok", "failing", "not configured"
_lock = threading.Lock()
_cached: tuple[float, dict[str, str]] | None = None
_migrated = False


def _json(status: int, body: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status,
                            content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """200 while the process serves requests (nothing else is looked at)."""
    return _json(200, {"status": "ok"})


# Without these the process cannot do its work. Redis can fail and the process still
# serves (the rate limits fall back to per-process counters, jobs wait): "degraded".
CRITICAL = ("database", "migrations", "keyring")


def readyz(request: HttpRequest) -> HttpResponse:
    """200 ``ready`` when every check is ok, 200 ``degraded`` when only Redis fails (take
    no traffic away for it); otherwise 503 ``not ready`` with Retry-After."""
    checks = current_checks()
    if any(checks[name] == FAILING for name in CRITICAL):
        response = _json(503, {"status": "not ready", "checks": checks})
        response["Retry-After"] = "5"
        return response
    degraded = any(v == FAILING for v in checks.values())
    return _json(200, {"status": "degraded" if degraded else "ready", "checks": checks})


def current_checks() -> dict[str, str]:
    """The checks' outcomes, at most :data:`CACHE_SECONDS` old. While one request runs
    the checks, the others answer with the last outcomes instead of waiting for it (a
    database that hangs must not tie up every thread behind one lock)."""
    global _cached
    cached = _cached
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return dict(cached[1])
    if not _lock.acquire(blocking=cached is None):
        return dict(cached[1])
    try:
        if _cached is None or time.monotonic() - _cached[0] >= CACHE_SECONDS:
            _cached = (time.monotonic(), run_checks())
        return dict(_cached[1])
    finally:
        _lock.release()


def reset() -> None:
    """Forget cached outcomes (tests, and a process that changed its configuration)."""
    global _cached, _migrated
    with _lock:
        _cached, _migrated = None, False


def run_checks() -> dict[str, str]:
    return {"database": _check("database", _database),
            "migrations": _check("migrations", _migrations),
            "keyring": _check("keyring", _keyring),
            "redis": _check("redis", _redis)}


def _check(name: str, probe) -> str:
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; logged
        log.warning("readiness check failed", extra={"check": name,
                                                     "error": type(exc).__name__})
        return FAILING


def _database() -> str:
    """The database answers and takes writes: not a replica in recovery, not read-only
    by default (a demoted or full primary), not a read-only SQLite file."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_is_in_recovery() OR "
                           "current_setting('transaction_read_only') = 'on'")
        else:
            cursor.execute("PRAGMA query_only")
        read_only = bool(cursor.fetchone()[0])
    name = Path(str(connection.settings_dict.get("NAME") or ""))
    if connection.vendor == "sqlite" and name.is_file() and not os.access(name, os.W_OK):
        read_only = True
    if read_only:
        raise DatabaseError("the database takes no writes")
    return OK


def _migrations() -> str:
    global _migrated
    if _migrated:
        return OK
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise DatabaseError("migrations are not all applied")
    _migrated = True
    return OK


def _keyring() -> str:
    from enclave.keys import api

    api.mac("tokens", b"readiness")
    return OK


def _redis() -> str:
    url = settings.CONFIG.redis_url
    if not url:
        return NOT_CONFIGURED
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return OK
