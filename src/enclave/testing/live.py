"""A real ``enclave serve`` process for tests that probe the running server (TLS, browser).

It runs the same supervisor as ``make run`` (gunicorn HTTPS + HTTP redirector + worker)
with its own var/ directory and free ports, and is always stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """Start ``enclave serve`` and yield once HTTPS answers; stop it afterwards."""
    var_dir = var_dir or Path(tempfile.mkdtemp(prefix="enclave-live-"))
    https_port, http_port = free_port(), free_port()
    log_path = var_dir.parent / f"{var_dir.name}-serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "enclave", "serve"],
            env=server_env(var_dir, https_port, http_port, **extra_env),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    live = LiveEnclave(https_port, http_port, var_dir, log_path, proc)
    try:
        _wait_ready(live, timeout)
        yield live
    finally:
        stop(proc)


def _wait_ready(live: LiveEnclave, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live.process.poll() is not None:
            raise RuntimeError(
                f"enclave serve exited with {live.process.returncode}:\n{live.log()}")
        if "Enclave is running at" in live.log():
            return
        time.sleep(0.2)
    stop(live.process)
    raise RuntimeError(f"enclave serve did not become ready in {timeout}s:\n{live.log()}")


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
