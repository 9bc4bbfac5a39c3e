"""A real ``enclave serve`` process for tests that probe the running server (TLS, browser).

It runs the same supervisor as ``make run`` (gunicorn HTTPS + HTTP redirector + worker)
with its own var/ directory and free ports, and is always stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Ports for servers a test starts itself, picked at random below Linux's ephemeral range
# (32768-60999): between the pick and the server's bind, an outgoing connection of any
# process can take a free ephemeral port, never one of these. Never the same port twice
# in one process, so two picks in a row always differ.
PORT_RANGE = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A localhost port nothing listens on now, not handed out before in this process.
    Also the port to use for "nothing listens there" (connection refused) tests."""
    for _ in range(500):
        port = PORT_RANGE[secrets.randbelow(len(PORT_RANGE))]
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free localhost port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


@dataclass(frozen=True)
class LiveEnclave:
    https_port: int
    http_port: int
    var_dir: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self.http_port}"

    @property
    def ca_file(self) -> Path:
        return self.var_dir / "tls" / "ca.crt"

    @property
    def env(self) -> dict[str, str]:
        """Environment for commands that must talk to this instance (e.g. the CLI)."""
        return server_env(self.var_dir, self.https_port, self.http_port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def setup_link(self) -> str | None:
        for line in self.log().splitlines():
            if "one-time link):" in line:
                return line.split("one-time link):", 1)[1].strip()
        return None


def server_env(var_dir: Path, https_port: int, http_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(
        ENCLAVE_ENV="test", ENCLAVE_VAR_DIR=str(var_dir), ENCLAVE_HTTPS_PORT=str(https_port),
        ENCLAVE_HTTP_PORT=str(http_port), PYTHONUNBUFFERED="1", **extra,
    )
    return env


@contextlib.contextmanager
def run_enclave(var_dir: Path | None = None, timeout: float = 60.0, **extra_env: str,
                ) -> Iterator[LiveEnclave]:
    """Start ``enclave serve`` and yield once HTTPS answers; stop it afterwards.

    If another process took one of its ports first (the server exits saying the address
    is in use), it starts again on other ports, up to three times."""
    var_dir = var_dir or Path(tempfile.mkdtemp(prefix="enclave-live-"))
    log_path = var_dir.parent / f"{var_dir.name}-serve.log"
    for attempt in range(3):
        https_port, http_port = free_port(), free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "enclave", "serve"],
                env=server_env(var_dir, https_port, http_port, **extra_env),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        live = LiveEnclave(https_port, http_port, var_dir, log_path, proc)
        try:
            _wait_ready(live, timeout)
        except PortTaken:
            stop(proc)
            if attempt == 2:
                raise
            continue
        except BaseException:
            stop(proc)
            raise
        break
    try:
        yield live
    finally:
        stop(proc)


class PortTaken(RuntimeError):
    """The server could not bind a port another process took after it was picked."""


def _wait_ready(live: LiveEnclave, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live.process.poll() is not None:
            if "already in use; stop what listens there" in live.log():
                raise PortTaken(f"a port of enclave serve was taken:\n{live.log()}")
            raise RuntimeError(
                f"enclave serve exited with {live.process.returncode}:\n{live.log()}")
        # The banner comes once HTTPS listens; the plain-HTTP listener starts just after
        # it, so a test that went straight to it could be refused: wait for both.
        if "Enclave is running at" in live.log() and _accepting(live.http_port):
            return
        time.sleep(0.2)
    stop(live.process)
    raise RuntimeError(f"enclave serve did not become ready in {timeout}s:\n{live.log()}")


def _accepting(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """SIGINT (as Ctrl-C does), then SIGKILL to the whole group if it does not stop."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
