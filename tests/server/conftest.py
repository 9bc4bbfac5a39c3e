"""Fixtures for the server tests: probes of the live server (directly and behind the
rendered nginx edge) and a throwaway PKI for weak servers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from enclave.core.controls import Probe
from enclave.server import nginx
from enclave.testing.live import free_port, run_enclave
from tests.server.servers import (
    NGINX,
    Pki,
    loopback_only,
    make_pki,
    nginx_main_config,
    probe_for,
    run_nginx,
)


@pytest.fixture(scope="session")
def live_probe(live_enclave) -> Probe:
    """Where the session's running ``enclave serve`` answers, trusting its local CA."""
    return Probe(https_url=live_enclave.https_url, http_url=live_enclave.http_url,
                 host="localhost", ca_file=str(live_enclave.ca_file))


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    """A throwaway CA and localhost leaves (EC and RSA) for the weak test servers."""
    return make_pki(tmp_path_factory.mktemp("weak-pki"))


@pytest.fixture
def closed_port_probe(pki) -> Probe:
    """A probe of ports nobody listens on (bound, then released)."""
    return probe_for(f"https://127.0.0.1:{free_port()}", pki,
                     http_url=f"http://127.0.0.1:{free_port()}")


@dataclass(frozen=True)
class Edge:
    probe: Probe
    https_port: int
    access_log: Path  # the site's (redacted) access log
    error_log: Path  # nginx's error log


@pytest.fixture(scope="session")
def nginx_edge(tmp_path_factory):
    """The rendered edge config on the real nginx, in front of an ``enclave serve`` that
    runs as in production (ENCLAVE_BEHIND_PROXY=1); nginx serves that instance's cert."""
    if not NGINX.exists():
        pytest.skip(f"{NGINX} is not installed")
    https_port, http_port = free_port(), free_port()
    public_url = f"https://localhost:{https_port}"
    root = tmp_path_factory.mktemp("edge")
    with run_enclave(root / "var", ENCLAVE_BEHIND_PROXY="1",
                     ENCLAVE_PUBLIC_URL=public_url) as app:
        site = nginx.render(
            public_url=public_url, https_port=https_port, http_port=http_port,
            certificate=str(app.var_dir / "tls" / "server.crt"),
            certificate_key=str(app.var_dir / "tls" / "server.key"),
            # The app's plain listener stands in for gunicorn on 127.0.0.1:8000.
            upstream=f"127.0.0.1:{app.http_port}", access_log=str(root / "edge-access.log"))
        site_path = root / "enclave.conf"
        site_path.write_text(loopback_only(site))
        with run_nginx(nginx_main_config(root, site_path), (https_port, http_port)):
            yield Edge(Probe(https_url=public_url, http_url=f"http://localhost:{http_port}",
                             host="localhost", ca_file=str(app.ca_file)), https_port,
                       root / "edge-access.log", root / "error.log")
