"""``enclave serve``: prepare var/, migrate, and run the embedded process tree.

Children: gunicorn on HTTPS (the product), gunicorn on HTTP (redirects/refusals only) and
a Celery worker with embedded beat (background jobs, no broker server). Ctrl-C or SIGTERM
stops all of them; if any child dies, the others are stopped and serve exits non-zero.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from enclave.config import Config
from enclave.server import tls
from enclave.server.binding import bind_addresses

STOP_TIMEOUT = 15.0


def prepare_directories(cfg: Config) -> None:
    """Create missing var/ directories: data and secrets private (0700).

    Existing directories are left as they are: wrong permissions are reported by the
    system checks (enclave.E104) and stop ``serve``, rather than being silently changed.
    """
    for path in (cfg.data_dir, cfg.secrets_dir):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg.tls_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    for sub in ("queue", "queue/messages", "queue/control"):
        (cfg.var_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)


def uses_embedded_tls(cfg: Config) -> bool:
    return cfg.tls_cert.parent == cfg.tls_dir and cfg.tls_key.parent == cfg.tls_dir


def prepare(cfg: Config) -> str | None:
    """Everything before serving. Returns the one-time owner set-up link, if one is due."""
    prepare_directories(cfg)
    if uses_embedded_tls(cfg):
        tls.ensure_certificates(cfg)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enclave.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("check", deploy=cfg.is_live, fail_level="ERROR", verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from enclave.core.environment import verify_database_environment
    from enclave.identity.actions import do_issue_owner_setup_link

    verify_database_environment()
    return do_issue_owner_setup_link()


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def child_commands(cfg: Config) -> dict[str, tuple[list[str], dict[str, str]]]:
    base_env = dict(os.environ, DJANGO_SETTINGS_MODULE="enclave.settings",
                    PYTHONUNBUFFERED="1")
    https_env = dict(base_env, OPENSSL_CONF=str(tls.OPENSSL_CNF))
    return {
        "https": ([_bin("gunicorn"), "-c", "python:enclave.server.gunicorn_https",
                   "enclave.wsgi:application"], https_env),
        "http": ([_bin("gunicorn"), "-c", "python:enclave.server.gunicorn_http",
                  "enclave.wsgi:application"], base_env),
        "worker": ([_bin("celery"), "-A", "enclave", "worker", "--beat", "--pool", "solo",
                    "--loglevel", "INFO", "--without-mingle", "--without-gossip",
                    "--hostname", "embedded@%h",
                    "--schedule", str(cfg.data_dir / "celerybeat-schedule")], base_env),
    }


def ports_in_use(cfg: Config) -> list[str]:
    """``NAME=port`` of each listener port that another process already holds on one of
    our bind addresses (a connect would reach that process and look like our server)."""
    taken = []
    for name, port in (("ENCLAVE_HTTPS_PORT", cfg.https_port),
                       ("ENCLAVE_HTTP_PORT", cfg.http_port)):
        for address in bind_addresses(port):
            host = address.rpartition(":")[0].strip("[]")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                # As gunicorn does: a port with connections in TIME_WAIT is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError:
                    taken.append(f"{name}={port}")
                    break
    return taken


def wait_for_port(port: int, timeout: float = 30.0, alive=None) -> bool:
    """True once something accepts on ``port``; False at ``timeout`` or as soon as
    ``alive()`` (the listener's process) says it has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _enqueue_start_jobs() -> None:
    from enclave.celery import app
    from enclave.core.schedule import SCHEDULE

    for job in SCHEDULE:
        if job.run_at_start:
            app.send_task(job.task)


def serve(cfg: Config) -> int:
    """Run until interrupted. Returns the process exit code."""
    link = prepare(cfg)
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(signum=None, frame=None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        taken = ports_in_use(cfg)
        if taken:
            print(f"enclave: cannot listen: {', '.join(taken)} already in use; stop what "
                  "listens there or choose another port", file=sys.stderr)
            return 1
        for name, (argv, env) in child_commands(cfg).items():
            children[name] = subprocess.Popen(argv, env=env)  # noqa: S603
        if not wait_for_port(cfg.https_port, alive=lambda: children["https"].poll() is None):
            print("enclave: the HTTPS listener did not start; see the messages above",
                  file=sys.stderr)
            return 1
        _enqueue_start_jobs()
        print(f"\nEnclave is running at {cfg.public_url}/  (plain HTTP on port "
              f"{cfg.http_port} only redirects).  Press Ctrl-C to stop.")
        if link:
            print(f"Create the owner account (one-time link): {link}\n")
        sys.stdout.flush()
        while not stopping:
            dead = [n for n, p in children.items() if p.poll() is not None]
            if dead:
                print(f"enclave: {', '.join(dead)} stopped unexpectedly; shutting down",
                      file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop_children(children)


def _stop_children(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
