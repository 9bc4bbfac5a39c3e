"""The one clock. Every "now" in Enclave comes from :func:`now`, so tests can move time.

``travel`` shifts the clock for the current process (retention, key age, session expiry,
schedules); tests simulate months in seconds without sleeping or patching datetime.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_offset = dt.timedelta(0)
_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """Return the current time, timezone-aware in UTC."""
    if _frozen is not None:
        return _frozen
    return dt.datetime.now(dt.UTC) + _offset


@contextlib.contextmanager
def travel(delta: dt.timedelta) -> Iterator[None]:
    """Shift :func:`now` by ``delta`` for the duration of the block (nestable)."""
    global _offset, _frozen
    with _lock:
        previous = (_offset, _frozen)
        _offset += delta
        if _frozen is not None:
            _frozen += delta
    try:
        yield
    finally:
        with _lock:
            _offset, _frozen = previous


@contextlib.contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Stop the clock at ``at`` (must be timezone-aware) for the duration of the block."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    global _frozen
    with _lock:
        previous = _frozen
        _frozen = at.astimezone(dt.UTC)
    try:
        yield
    finally:
        with _lock:
            _frozen = previous


def advance(delta: dt.timedelta) -> None:
    """Move a frozen clock forward by ``delta`` (inside :func:`frozen`)."""
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("advance() only works inside clock.frozen()")
        _frozen += delta
