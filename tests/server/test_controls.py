"""The transport controls pass against the real ``enclave serve`` and fail against weak
servers built to break exactly one promise each."""

from __future__ import annotations

import contextlib
import sqlite3
import ssl

import pytest

from enclave.core import headers
from enclave.core.controls import FAIL, PASS, Probe, Result, registry, run_one
from enclave.server import controls, probes, tls
from tests.server.servers import SERVER_CONTROLS, TinyServer, fixed, probe_for, weak_context


def run(control_id: str, probe: Probe) -> Result:
    """Run one control the way ``enclave security report`` does."""
    return run_one(registry()[control_id], probe)


def good_headers() -> dict[str, str]:
    return {**headers.static_headers(preload=False), "Content-Security-Policy":
            headers.csp_value("n0nce")}


def app_like(path: str) -> tuple[int, dict[str, str]]:
    """Statuses like Enclave's (404 for the probe's missing path), with good headers."""
    return (404 if path == controls.MISSING_PATH else 200), good_headers()


class TestRegistration:
    def test_server_controls_are_in_the_registry_for_the_report(self):
        assert set(SERVER_CONTROLS) <= set(registry())


class TestEveryServerControl:
    @pytest.mark.parametrize("control_id", SERVER_CONTROLS)
    def test_control_passes_against_enclave_serve(self, live_probe, control_id):
        result = run(control_id, live_probe)
        assert result.status == PASS, result.evidence

    @pytest.mark.parametrize("control_id", SERVER_CONTROLS)
    def test_control_fails_naming_the_url_when_nothing_listens(self, closed_port_probe,
                                                               control_id):
        result = run(control_id, closed_port_probe)
        assert result.status == FAIL
        assert "127.0.0.1:" in result.evidence
        assert "make run" in result.evidence


class TestHttpsRedirectControl:
    def test_evidence_shows_status_and_location_when_passing(self, live_probe):
        evidence = run("HTTPS-1", live_probe).evidence
        assert f"301, Location: {live_probe.https_url}/pricing?x=1" in evidence

    def test_fails_when_plain_http_serves_the_page(self, pki):
        with TinyServer(fixed(200)) as plain:
            result = run("HTTPS-1", probe_for("https://127.0.0.1:1", pki, plain.url))
        assert result.status == FAIL
        assert "-> 200" in result.evidence

    def test_fails_when_redirect_points_elsewhere(self, pki):
        with TinyServer(fixed(301, {"Location": "http://localhost/pricing?x=1"})) as plain:
            result = run("HTTPS-1", probe_for("https://127.0.0.1:1", pki, plain.url))
        assert result.status == FAIL
        assert "expected 301 to https://localhost:1/pricing?x=1" in result.evidence

    def test_fails_when_redirect_is_temporary(self, pki):
        https = "https://127.0.0.1:8443"
        with TinyServer(fixed(302, {"Location": "https://localhost:8443/pricing?x=1"})) as plain:
            result = run("HTTPS-1", probe_for(https, pki, plain.url))
        assert result.status == FAIL


class TestHttpsApiControl:
    def test_fails_when_api_is_redirected(self, pki):
        location = {"Location": "https://localhost/api/v1/health"}
        with TinyServer(fixed(301, location)) as plain:
            result = run("HTTPS-2", probe_for("https://127.0.0.1:1", pki, plain.url))
        assert result.status == FAIL
        assert "-> 301" in result.evidence

    def test_fails_when_refusal_is_not_problem_json(self, pki):
        with TinyServer(fixed(403, {"Content-Type": "text/html"})) as plain:
            result = run("HTTPS-2", probe_for("https://127.0.0.1:1", pki, plain.url))
        assert result.status == FAIL

    def test_probe_records_no_credential_exposure_on_live_server(self, live_enclave, live_probe):
        database = live_enclave.var_dir / "data" / "enclave.sqlite3"

        def exposures() -> int:
            with contextlib.closing(sqlite3.connect(database)) as db:
                return db.execute("SELECT COUNT(*) FROM core_credentialexposure").fetchone()[0]

        before = exposures()
        assert run("HTTPS-2", live_probe).status == PASS
        assert exposures() == before


class TestTlsVersionsControl:
    def test_evidence_names_each_protocol_outcome(self, live_probe):
        evidence = run("TLS-1", live_probe).evidence
        assert "TLSv1: refused (alert TLSV1_ALERT_PROTOCOL_VERSION)" in evidence
        assert "TLSv1.1: refused" in evidence
        assert "TLSv1.3: TLSv1.3 TLS_" in evidence

    def test_fails_when_server_accepts_tls10(self, pki):
        ctx = weak_context(pki.ec_cert, pki.ec_key, minimum=ssl.TLSVersion.TLSv1)
        with TinyServer(fixed(200), ctx) as weak:
            result = run("TLS-1", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "TLSv1 was accepted" in result.evidence
        assert "TLSv1.1 was accepted" in result.evidence

    def test_fails_when_server_refuses_tls13(self, pki):
        ctx = tls.server_context(pki.ec_cert, pki.ec_key)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with TinyServer(fixed(200), ctx) as weak:
            result = run("TLS-1", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "TLSv1.3 was refused" in result.evidence

    def test_fails_as_could_not_probe_when_client_cannot_offer_tls10(self, live_probe,
                                                                     monkeypatch):
        # With Python's default suites (@SECLEVEL=2, no SHA-1) OpenSSL 3 sends no TLS 1.0
        # ClientHello at all; that must never read as "the server refused TLS 1.0".
        monkeypatch.setattr(probes, "LEGACY_CIPHERS", None)
        result = run("TLS-1", live_probe)
        assert result.status == FAIL
        assert "could not probe" in result.evidence

    def test_fails_when_certificate_is_not_trusted(self, live_enclave, pki):
        untrusting = Probe(https_url=live_enclave.https_url, http_url=None, host="localhost",
                           ca_file=str(pki.ca_file))
        result = run("TLS-1", untrusting)
        assert result.status == FAIL
        assert "did not verify" in result.evidence


class TestTlsSuitesControl:
    def test_evidence_shows_refused_weak_suites_and_negotiated_default(self, live_probe):
        evidence = run("TLS-2", live_probe).evidence
        assert "TLSv1.2 only ECDHE-ECDSA-AES128-SHA: refused" in evidence
        assert "default: TLSv1.3 TLS_" in evidence
        assert "compression none" in evidence

    def test_fails_when_server_accepts_cbc_suite(self, pki):
        ctx = weak_context(pki.ec_cert, pki.ec_key,
                           ciphers=f"{tls.TLS12_CIPHERS}:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
        with TinyServer(fixed(200), ctx) as weak:
            result = run("TLS-2", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "ECDHE-ECDSA-AES128-SHA was accepted" in result.evidence

    def test_fails_when_server_accepts_rsa_key_exchange(self, pki):
        ctx = weak_context(pki.rsa_cert, pki.rsa_key,
                           ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256")
        with TinyServer(fixed(200), ctx) as weak:
            result = run("TLS-2", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "AES128-GCM-SHA256 was accepted" in result.evidence

    def test_fails_when_default_handshake_negotiates_cbc(self, pki):
        # A CBC suite outside WEAK_TLS12_SUITES: only the negotiated-default check sees it.
        ctx = weak_context(pki.ec_cert, pki.ec_key, ciphers="ECDHE-ECDSA-AES256-SHA384")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with TinyServer(fixed(200), ctx) as weak:
            result = run("TLS-2", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "TLSv1.2 default negotiated TLSv1.2 ECDHE-ECDSA-AES256-SHA384" in result.evidence

    def test_fails_when_groups_are_not_restricted(self, pki):
        # The policy's own context without openssl.cnf (which only the HTTPS listener
        # loads): ciphers are fine, but P-521, X448 and ffdhe2048 are accepted.
        ctx = tls.server_context(pki.ec_cert, pki.ec_key)
        with TinyServer(fixed(200), ctx) as weak:
            result = run("TLS-2", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "group secp521r1 was accepted" in result.evidence
        assert "AES128-SHA was accepted" not in result.evidence


class TestSecurityHeadersControl:
    def test_passes_against_server_sending_the_policy(self, pki):
        with TinyServer(app_like, tls.server_context(pki.ec_cert, pki.ec_key)) as server:
            result = run("HDR-1", probe_for(server.url, pki))
        assert result.status == PASS, result.evidence

    def test_fails_when_hsts_is_missing(self, pki):
        def no_hsts(path: str) -> tuple[int, dict[str, str]]:
            status, values = app_like(path)
            del values["Strict-Transport-Security"]
            return status, values

        with TinyServer(no_hsts, tls.server_context(pki.ec_cert, pki.ec_key)) as weak:
            result = run("HDR-1", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "page: missing Strict-Transport-Security" in result.evidence

    def test_fails_when_only_the_404_lacks_headers(self, pki):
        def bare_404(path: str) -> tuple[int, dict[str, str]]:
            status, values = app_like(path)
            return status, (values if status == 200 else {})

        with TinyServer(bare_404, tls.server_context(pki.ec_cert, pki.ec_key)) as weak:
            result = run("HDR-1", probe_for(weak.url, pki))
        assert result.status == FAIL
        assert "404: missing Content-Security-Policy" in result.evidence
        assert "page: missing" not in result.evidence


def response(**values: str) -> probes.Response:
    merged = {k.lower(): v for k, v in good_headers().items()}
    merged.update({k.replace("_", "-").lower(): v for k, v in values.items()})
    return probes.Response("https://localhost/", 200, merged, b"")


class TestHeaderProblems:
    def test_no_problems_for_the_policy_headers(self):
        assert controls.header_problems(response()) == []

    def test_short_hsts_max_age_is_a_problem(self):
        problems = controls.header_problems(
            response(strict_transport_security="max-age=31536000; includeSubDomains"))
        assert problems == ["HSTS max-age 31536000 < 63072000"]

    def test_hsts_without_include_subdomains_is_a_problem(self):
        problems = controls.header_problems(response(strict_transport_security="max-age=63072000"))
        assert problems == ["HSTS without includeSubDomains"]

    def test_csp_with_unsafe_inline_is_a_problem(self):
        csp = headers.csp_value(None).replace("script-src 'self'", "script-src 'unsafe-inline'")
        assert controls.header_problems(response(content_security_policy=csp)) == [
            "CSP allows 'unsafe-inline'"]

    def test_csp_allowing_framing_is_a_problem(self):
        csp = headers.csp_value(None).replace("frame-ancestors 'none'", "frame-ancestors 'self'")
        problems = controls.header_problems(response(content_security_policy=csp))
        assert problems == ["CSP frame-ancestors is \"'self'\", not 'none'"]

    def test_each_missing_required_header_is_named(self):
        resp = probes.Response("https://localhost/", 200, {}, b"")
        assert controls.header_problems(resp) == [f"missing {n}" for n in headers.REQUIRED]
