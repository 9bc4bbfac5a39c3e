"""The public site served by the real ``enclave serve``, checked with Python's ssl.

The browser tests pin the server's key in chromium; these tests prove that key belongs to
a certificate the local CA issued for the host name the browser uses.
"""

from __future__ import annotations

import http.client
import socket
import ssl

import pytest

from enclave.core import headers

pytestmark = pytest.mark.tls


@pytest.fixture(scope="module")
def ca_context(live_enclave) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(live_enclave.ca_file))


def fetch(live_enclave, context: ssl.SSLContext, path: str) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPSConnection("localhost", live_enclave.https_port, context=context,
                                       timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class TestLiveCertificate:
    def test_certificate_verifies_against_the_local_ca_for_localhost(self, live_enclave,
                                                                     ca_context):
        with (socket.create_connection(("localhost", live_enclave.https_port), timeout=10)
              as sock, ca_context.wrap_socket(sock, server_hostname="localhost") as tls):
            assert tls.version() == "TLSv1.3"  # what a current client and Enclave agree on
            assert tls.getpeercert()["subject"]

    def test_certificate_is_refused_for_another_host_name(self, live_enclave, ca_context):
        with (socket.create_connection(("localhost", live_enclave.https_port), timeout=10)
              as sock, pytest.raises(ssl.SSLCertVerificationError, match="mismatch")):
            ca_context.wrap_socket(sock, server_hostname="evil.example").close()

    def test_certificate_is_refused_without_the_local_ca(self, live_enclave):
        with (socket.create_connection(("localhost", live_enclave.https_port), timeout=10)
              as sock, pytest.raises(ssl.SSLCertVerificationError)):
            ssl.create_default_context().wrap_socket(sock, server_hostname="localhost").close()


class TestLivePublicSite:
    @pytest.mark.parametrize("path", ["/", "/pricing", "/security"])
    def test_page_is_served_over_verified_https_with_security_headers(
        self, live_enclave, ca_context, path,
    ):
        status, sent, _ = fetch(live_enclave, ca_context, path)
        assert status == 200
        assert [h for h in headers.REQUIRED if h not in sent] == []

    def test_security_txt_is_served_as_plain_text(self, live_enclave, ca_context):
        status, sent, body = fetch(live_enclave, ca_context, "/.well-known/security.txt")
        assert status == 200
        assert sent["Content-Type"] == "text/plain; charset=utf-8"
        assert b"Contact: mailto:" in body

    def test_plain_http_redirects_to_https(self, live_enclave):
        conn = http.client.HTTPConnection("localhost", live_enclave.http_port, timeout=10)
        try:
            conn.request("GET", "/pricing")
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        assert response.status == 301
        assert response.getheader("Location") == f"{live_enclave.https_url}/pricing"
