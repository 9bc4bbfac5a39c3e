"""A real moto server (AWS APIs over HTTP on localhost) for the keyring and backup tests."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a port the kernel picks at bind time; yield its URL.

    A port picked first and bound later can be taken in between, and moto's thread then
    dies before it signals readiness: start() would wait forever.
    """
    from moto.server import ThreadedMotoServer

    # The server's request log would go through Enclave's logging pipeline from server
    # threads; it is noise for these tests.
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.disabled = True
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.disabled = False
