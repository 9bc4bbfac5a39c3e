"""The local edge's nginx configuration reuses the shared edge renderer unchanged."""

from __future__ import annotations

from pathlib import Path

from enclave.deploy import edge
from enclave.server import nginx

SITE = edge.EdgeSite(upstream="10.231.3.6:8000", server_name="enclave.test",
                     certificate=Path("/run/x/tls/server.crt"), key=Path("/run/x/tls/server.key"),
                     runtime=Path("/run/x/edge"), logs=Path("/run/x/logs"))


class TestEdgeConfig:
    def test_server_blocks_are_the_shared_edge_policy(self):
        shared = nginx.render(public_url="https://enclave.test",
                              certificate="/run/x/tls/server.crt",
                              certificate_key="/run/x/tls/server.key", upstream="10.231.3.6:8000",
                              access_log="/run/x/logs/nginx-access.log")
        text = edge.render(SITE)
        for line in shared.splitlines():
            assert line.strip() in text

    def test_keeps_every_file_it_writes_or_reads_inside_the_deployment(self):
        directives = ("pid", "error_log", "access_log", "client_body_temp_path",
                      "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                      "scgi_temp_path", "ssl_certificate", "ssl_certificate_key")
        found = {}
        for line in edge.render(SITE).splitlines():
            words = line.split()
            if words and words[0] in directives:
                found[words[0]] = words[1].rstrip(";")
        assert set(found) == set(directives)
        # /dev/null: errors on one-time token paths are discarded (enclave.server.nginx).
        assert all(path.startswith("/run/x/") or path == "/dev/null"
                   for path in found.values()), found
