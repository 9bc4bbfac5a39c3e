"""Probes run *inside* a network namespace (``ip netns exec NS python -m enclave.deploy.probe``).

``connect HOST:PORT ...`` tries a TCP connection to each target in parallel and prints a
JSON object ``{"HOST:PORT": outcome}`` where outcome is ``open``, ``refused``, ``timeout``,
``unreachable`` (no route) or ``blocked`` (refused by the local firewall). ``get URL``
makes one HTTPS request to a given address with a given CA and prints status and body.
Standard library only, so it starts fast in every namespace.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

OPEN, REFUSED, TIMEOUT = "open", "refused", "timeout"
UNREACHABLE, BLOCKED = "unreachable", "blocked"


def connect(target: str, timeout: float) -> str:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return OPEN
    except TimeoutError:
        return TIMEOUT
    except ConnectionRefusedError:
        return REFUSED
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return UNREACHABLE
        if exc.errno in (errno.EPERM, errno.EACCES):
            return BLOCKED
        return f"error: {exc.strerror or exc}"


def connect_all(targets: list[str], timeout: float) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        return dict(zip(targets, pool.map(lambda t: connect(t, timeout), targets), strict=True))


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address while presenting and verifying the URL's host (SNI)."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext,
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address, self._tls = address, context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def https_get(url: str, address: str, ca_file: str, timeout: float,
              headers: dict[str, str]) -> dict:
    """GET ``url`` from ``address`` (not DNS), verifying the certificate for the URL's host."""
    parsed = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    conn = _PinnedHTTPS(parsed.hostname or "", parsed.port or 443, address, context, timeout)
    try:
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        conn.request("GET", path or "/", headers=headers)
        resp = conn.getresponse()
        body = resp.read(65536).decode("utf-8", "replace")
        return {"status": resp.status, "headers": dict(resp.getheaders()), "body": body,
                "tls_version": conn.sock.version()}
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enclave.deploy.probe")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("connect")
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("targets", nargs="+")
    p = sub.add_parser("get")
    p.add_argument("url")
    p.add_argument("--address", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    if args.what == "connect":
        result = connect_all(args.targets, args.timeout)
    else:
        headers = dict(h.split(":", 1) for h in args.header)
        try:
            result = https_get(args.url, args.address, args.ca, args.timeout,
                               {k.strip(): v.strip() for k, v in headers.items()})
        except (OSError, http.client.HTTPException) as exc:
            result = {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
