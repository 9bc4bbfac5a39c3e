"""Run untrusted work — compiling a member's template — in a forked child process with
hard limits, so that nothing a template does can take the server down with it.

The compilers are native code (mrml and css-inline are Rust): a deeply nested document
overflows their stack (a segfault no Python ``except`` can catch), and a small MJML file
can make mrml write gigabytes. In the child, ``RLIMIT_AS`` caps memory, ``RLIMIT_CPU``
caps CPU time, ``RLIMIT_CORE`` is 0 (a crash leaves no core file), and the parent kills
it at a wall-clock deadline. The child sends back JSON and leaves with ``os._exit``, so
it never touches the parent's database connections, files or atexit handlers.

Forking costs about a millisecond here. Where ``fork`` does not exist the work runs in
the process (development machines only; deployments are Linux).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import resource
import select
import signal
import time
from pathlib import Path

MEMORY_BYTES = 1 << 30  # beyond what the process has mapped already
CPU_SECONDS = 10
WALL_SECONDS = 20
MAX_REPLY = 64 << 20


class Failed(Exception):
    """The child died (a signal, a limit, the deadline) or answered nonsense."""


def _mapped_bytes() -> int:
    try:
        pages = Path("/proc/self/statm").read_text().split()[0]
        return int(pages) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _child(write_fd: int, fn, args, expected, cpu_seconds: int, memory_bytes: int) -> None:
    reply: list
    try:
        # Nothing of the parent's stays open here: not other requests' sockets, not the
        # database's, not another call's pipe (whose reader would wait for our exit).
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, _max_fd())
        faulthandler.disable()  # a crash here is reported by the parent, not dumped
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        limit = _mapped_bytes() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        reply = ["ok", fn(*args)]
    except expected as exc:
        reply = ["expected", list(exc.args)]
    except BaseException as exc:  # noqa: BLE001 — reported to the parent, never raised
        reply = ["error", type(exc).__name__]
    try:
        data = json.dumps(reply).encode()
    except (TypeError, ValueError):
        data = b'["error", "unserialisable"]'
    view = memoryview(data)
    while view:
        view = view[os.write(write_fd, view):]


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 65536


def run(fn, *args, expected: type[Exception], cpu_seconds: int | None = None,
        memory_bytes: int | None = None, wall_seconds: float | None = None):
    """``fn(*args)`` in a limited child; its (JSON-serialisable) result. An ``expected``
    exception raised in the child is raised again here (rebuilt from its args); anything
    else — another exception, a crash, a limit, the deadline, no fork — is
    :class:`Failed`. Limits default to the module's constants."""
    if not hasattr(os, "fork"):
        return fn(*args)
    cpu = CPU_SECONDS if cpu_seconds is None else cpu_seconds
    memory = MEMORY_BYTES if memory_bytes is None else memory_bytes
    wall = WALL_SECONDS if wall_seconds is None else wall_seconds
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise Failed("could not start a child process") from None
    if pid == 0:  # the child
        try:
            _child(write_fd, fn, args, expected, cpu, memory)
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        data = _read_until(read_fd, time.monotonic() + wall)
    finally:
        os.close(read_fd)
        _reap(pid)
    return _decode(data, expected)


def _read_until(fd: int, deadline: float) -> bytes | None:
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None  # the deadline
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY:
            return None


def _reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _decode(data: bytes | None, expected):
    if not data:
        raise Failed("the child process died or ran out of time")
    try:
        kind, value = json.loads(data)
    except (ValueError, TypeError):
        raise Failed("the child process answered nonsense") from None
    if kind == "ok":
        return value
    if kind == "expected":
        raise expected(*value)
    raise Failed(f"the child process failed ({value})")
