"""Servers for the server controls to probe, besides ``enclave serve`` itself.

A :class:`TinyServer` answers every request with a fixed status and headers, over TLS (a
context the test builds: TLS 1.0, CBC suites, an RSA certificate, ...) or plain HTTP. It
binds 127.0.0.1 on a free port, serves in a daemon thread, and stops on exit.
:func:`run_nginx` runs the real nginx with a rendered edge configuration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enclave.core.controls import Probe
from enclave.server.supervisor import wait_for_port

Responder = Callable[[str], tuple[int, dict[str, str]]]
SERVER_CONTROLS = ("HDR-1", "HTTPS-1", "HTTPS-2", "TLS-1", "TLS-2")


@dataclass(frozen=True)
class Pki:
    """A throwaway CA with an EC P-256 and an RSA-2048 ``localhost`` leaf, as PEM files."""

    ca_file: Path
    ec_cert: Path
    ec_key: Path
    rsa_cert: Path
    rsa_key: Path


def make_pki(directory: Path) -> Pki:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Weak-server test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths = {}
    for kind, key in (("ec", ec.generate_private_key(ec.SECP256R1())),
                      ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))):
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{kind}.crt", directory / f"{kind}.key"
        cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        paths[kind] = (cert_path, key_path)
    return Pki(directory / "ca.crt", *paths["ec"], *paths["rsa"])


def weak_context(cert: Path, key: Path, *, minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
                 ciphers: str = "ALL:@SECLEVEL=0") -> ssl.SSLContext:
    """A server context that accepts whatever the test asks for, down to TLS 1.0."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 is the point here.
        ctx.minimum_version = minimum
    ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(cert, key)
    return ctx


def fixed(status: int, headers: dict[str, str] | None = None) -> Responder:
    """Answer every path with ``status`` and ``headers``."""
    return lambda path: (status, dict(headers or {}))


class TinyServer:
    """A one-thread HTTP(S) server on 127.0.0.1 that answers with ``responder(path)``."""

    def __init__(self, responder: Responder, context: ssl.SSLContext | None = None) -> None:
        self.responder = responder
        self.context = context
        self.requests: list[bytes] = []  # raw request heads, in arrival order
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> TinyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            stream = self.context.wrap_socket(conn, server_side=True) if self.context else conn
        except OSError:
            return  # A refused handshake: exactly what the probe wanted to see.
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = stream.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            path = request.split(b" ", 2)[1].decode("latin-1")
            status, headers = self.responder(path)
            body = b"{}" if path.startswith("/api/") else b"<!doctype html><title>t</title>"
            lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close",
                     *(f"{k}: {v}" for k, v in headers.items())]
            stream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            return
        finally:
            if stream is not conn:
                stream.close()


def probe_for(https_url: str, pki: Pki, http_url: str | None = None) -> Probe:
    """A probe of a test server, presenting and verifying the name ``localhost``."""
    return Probe(https_url=https_url, http_url=http_url, host="localhost",
                 ca_file=str(pki.ca_file))


NGINX = Path("/usr/sbin/nginx")


def nginx_main_config(prefix: Path, site: Path) -> Path:
    """A main nginx.conf keeping pid, logs and temp files under ``prefix``; includes ``site``."""
    temp = prefix / "temp"
    temp.mkdir(exist_ok=True)
    main = prefix / "nginx.conf"
    main.write_text("\n".join([
        f"pid {prefix}/nginx.pid;", f"error_log {prefix}/error.log;", "events {}", "http {",
        f"    access_log {prefix}/access.log;",
        *(f"    {kind}_temp_path {temp}/{kind};"
          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        f"    include {site};", "}", ""]))
    return main


def nginx_argv(main: Path, *extra: str) -> list[str]:
    prefix = main.parent
    return [str(NGINX), "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(main),
            *extra]


@contextlib.contextmanager
def run_nginx(main: Path, ports: tuple[int, ...]) -> Iterator[subprocess.Popen]:
    """Run nginx in the foreground until the block ends; yields once ``ports`` accept."""
    with (main.parent / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(nginx_argv(main, "-g", "daemon off;"),
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        for port in ports:
            if not wait_for_port(port, timeout=15):
                raise RuntimeError(f"nginx did not listen on {port}: "
                                   f"{(main.parent / 'error.log').read_text(errors='replace')}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loopback_only(site: str) -> str:
    """The site config listening on 127.0.0.1 only (the template listens everywhere)."""
    lines = []
    for line in site.splitlines():
        directive = line.strip()
        if directive.startswith("listen [::]:"):
            continue
        if directive.startswith("listen "):
            line = line.replace("listen ", "listen 127.0.0.1:", 1)
        lines.append(line)
    return "\n".join(lines) + "\n"
