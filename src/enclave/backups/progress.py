"""A progress line on stderr for long backup work (create, verify, restore, drill).

Actions take an optional ``progress(phase, done, total)`` callback (bytes; ``total`` is
``None`` when not known in advance, e.g. while ``pg_dump`` streams). :class:`ProgressLine`
is the CLI's implementation: it redraws one line in place on a terminal, prints plain lines
otherwise (``--progress`` into a file or pipe), and writes at most every
:data:`ProgressLine.INTERVAL` seconds, plus once at the end of each phase. It only ever
writes to stderr, so ``--json`` on stdout stays machine-readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import BinaryIO

Progress = Callable[[str, int, "int | None"], None]  # (phase, bytes done, bytes total)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover — loop always returns


class ProgressLine:
    """``progress`` callback drawing ``phase: done / total (pct) rate`` on stderr."""

    INTERVAL = 0.25  # seconds between redraws: at most four updates a second

    def __init__(self, stream=None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._clock = clock
        self._phase: str | None = None
        self._started = self._last = 0.0
        self._pending: tuple[int, int | None] | None = None
        self.updates = 0

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = self._clock()
        if phase != self._phase:
            self._flush()
            if self._phase is not None and self.tty:
                self.stream.write("\n")
            self._phase, self._started, self._last = phase, now, float("-inf")
        self._pending = (done, total)
        if now - self._last >= self.INTERVAL:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if self._pending is None or self._phase is None:
            return
        now = self._clock() if now is None else now
        done, total = self._pending
        self._pending = None
        self._last = now
        elapsed = now - self._started
        rate = f"{_size(done / elapsed)}/s" if elapsed > 0 else "-"
        amount = f"{_size(done)} / {_size(total)}" if total else _size(done)
        percent = f" ({min(done / total, 1.0):4.0%})" if total else ""
        text = f"{self._phase}: {amount}{percent} {rate}"
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()
        self.updates += 1

    def close(self) -> None:
        """Draw the last state of the current phase (and end the terminal line)."""
        self._flush()
        if self._phase is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self._phase = None


class CountingReader:
    """Wraps a binary stream; reports bytes read so far to ``progress`` under ``phase``."""

    def __init__(self, stream: BinaryIO, progress: Progress, phase: str,
                 total: int | None) -> None:
        self._stream, self._progress, self._phase, self._total = stream, progress, phase, total
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.done += len(data)
        self._progress(self._phase, self.done, self._total)
        return data

    def close(self) -> None:
        self._stream.close()


def reading(stream: BinaryIO, progress: Progress | None, phase: str,
            total: int | None) -> BinaryIO:
    """``stream`` itself, or a counting wrapper when there is a ``progress`` callback."""
    return stream if progress is None else CountingReader(stream, progress, phase, total)
