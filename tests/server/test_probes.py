"""Probes observe the server honestly: refusals are the server's, failures are errors."""

from __future__ import annotations

import ssl

import pytest

from enclave.server import probes
from enclave.server.probes import ProbeError
from tests.server.servers import TinyServer, fixed, probe_for, weak_context


class TestHandshake:
    def test_default_handshake_with_live_server_is_tls13(self, live_probe):
        hs = probes.handshake(live_probe)
        assert hs.established
        assert hs.protocol == "TLSv1.3"
        assert hs.compression is None

    def test_tls12_handshake_with_live_server_negotiates_ecdhe_aead(self, live_probe):
        hs = probes.handshake(live_probe, version=ssl.TLSVersion.TLSv1_2)
        assert (hs.protocol, hs.cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_tls10_offer_is_refused_by_live_server_with_an_alert(self, live_probe):
        hs = probes.handshake(live_probe, version=ssl.TLSVersion.TLSv1,
                              ciphers=probes.LEGACY_CIPHERS)
        assert not hs.established
        assert hs.refusal == "alert TLSV1_ALERT_PROTOCOL_VERSION"

    def test_tls10_offer_is_established_with_a_server_that_allows_it(self, pki):
        ctx = weak_context(pki.ec_cert, pki.ec_key, minimum=ssl.TLSVersion.TLSv1)
        with TinyServer(fixed(200), ctx) as weak:
            hs = probes.handshake(probe_for(weak.url, pki), version=ssl.TLSVersion.TLSv1,
                                  ciphers=probes.LEGACY_CIPHERS)
        assert (hs.established, hs.protocol) == (True, "TLSv1")

    def test_client_that_cannot_offer_raises_could_not_probe(self, live_probe):
        with pytest.raises(ProbeError, match=r"could not probe .* refused to offer"):
            probes.handshake(live_probe, version=ssl.TLSVersion.TLSv1)

    def test_unknown_group_raises_could_not_probe(self, live_probe):
        with pytest.raises(ProbeError, match="could not probe"):
            probes.handshake(live_probe, group="no-such-group")

    def test_closed_port_raises_naming_the_url(self, closed_port_probe):
        with pytest.raises(ProbeError, match=r"https://127\.0\.0\.1:\d+ .*make run"):
            probes.handshake(closed_port_probe)

    def test_silent_server_raises_instead_of_counting_as_refusal(self, pki):
        with TinyServer(fixed(200)) as plain:  # plain TCP: never answers a ClientHello
            probe = probe_for(plain.url.replace("http:", "https:"), pki)
            with pytest.raises(ProbeError):
                probes.handshake(probe, timeout=0.5)


class TestRequest:
    def test_redirect_is_reported_not_followed(self, live_probe):
        resp = probes.request(live_probe, f"{live_probe.http_url}/pricing?x=1")
        assert resp.status == 301
        assert resp.header("location") == f"{live_probe.https_url}/pricing?x=1"

    def test_request_sends_probe_host_as_host_header(self, pki):
        with TinyServer(fixed(204)) as plain:
            probe = probe_for("https://127.0.0.1:1", pki, plain.url)
            resp = probes.request(probe, f"{plain.url}/a?b=c")
        assert resp.status == 204
        assert plain.requests[0].startswith(b"GET /a?b=c HTTP/1.1\r\n")
        assert b"\r\nHost: localhost\r\n" in plain.requests[0]

    def test_request_carries_no_credential(self, pki):
        with TinyServer(fixed(204)) as plain:
            probes.request(probe_for("https://127.0.0.1:1", pki, plain.url), f"{plain.url}/")
        head = plain.requests[0].lower()
        assert b"authorization" not in head
        assert b"cookie" not in head

    def test_untrusted_certificate_raises(self, live_enclave, pki):
        probe = probe_for(live_enclave.https_url, pki)
        with pytest.raises(ProbeError, match="did not verify"):
            probes.request(probe, live_enclave.https_url + "/")

    def test_closed_port_raises_naming_the_url(self, closed_port_probe):
        url = f"{closed_port_probe.http_url}/x"
        with pytest.raises(ProbeError, match=f"no response from {url}.*make run"):
            probes.request(closed_port_probe, url)
