"""The nginx edge config is rendered from the embedded server's policy and nginx accepts it."""

from __future__ import annotations

import contextlib
import http.client
import re
import secrets
import ssl
import subprocess

import pytest

from enclave.core import headers
from enclave.core.controls import PASS, registry, run_one
from enclave.logs import policy
from enclave.server import nginx, tls
from tests.server.servers import (
    NGINX,
    SERVER_CONTROLS,
    make_pki,
    nginx_argv,
    nginx_main_config,
)


@pytest.fixture(scope="module")
def committed() -> str:
    return nginx.CONF_PATH.read_text(encoding="utf-8")


def directives(text: str, name: str) -> list[str]:
    """Arguments of every ``name ...;`` directive (comments ignored)."""
    pattern = re.compile(rf"^\s*{re.escape(name)}\s+(.*);\s*$")
    return [m.group(1) for line in text.splitlines() if (m := pattern.match(line))]


class TestCommittedConfig:
    def test_committed_file_equals_renderer_output(self, committed):
        assert committed == nginx.render(), (
            "deploy/nginx/enclave.conf is stale: run `python -m enclave.server.nginx --write`")


class TestRenderedTls:
    def test_protocols_are_the_policy_protocols(self, committed):
        assert directives(committed, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]

    def test_tls12_suites_are_the_policy_suites(self, committed):
        assert directives(committed, "ssl_ciphers") == [tls.TLS12_CIPHERS]

    def test_groups_are_the_policy_groups_in_nginx_spelling(self, committed):
        assert directives(committed, "ssl_ecdh_curve") == ["X25519:prime256v1:secp384r1"]

    def test_tls13_suites_are_the_policy_suites(self, committed):
        assert f"Ciphersuites {tls.TLS13_CIPHERSUITES}" in directives(committed,
                                                                      "ssl_conf_command")

    def test_session_tickets_are_off(self, committed):
        assert directives(committed, "ssl_session_tickets") == ["off"]


class TestRenderedHeaders:
    def test_every_static_header_is_added_on_every_status(self, committed):
        added = directives(committed, "add_header")
        assert added == [f'{k} "{v}" always' for k, v in headers.static_headers(False).items()]

    def test_hsts_is_two_years_with_subdomains(self, committed):
        assert 'Strict-Transport-Security "max-age=63072000; includeSubDomains" always' in (
            directives(committed, "add_header"))

    def test_app_copies_of_static_headers_are_hidden(self, committed):
        assert directives(committed, "proxy_hide_header") == list(headers.static_headers(False))

    def test_csp_is_left_to_the_app(self, committed):
        for name in ("add_header", "proxy_hide_header", "more_set_headers"):
            assert not any("Content-Security-Policy" in d for d in directives(committed, name))

    def test_preload_is_rendered_when_asked(self):
        assert "includeSubDomains; preload" in nginx.render(preload=True)


class TestRenderedServers:
    def test_server_tokens_are_off_in_both_servers(self, committed):
        assert directives(committed, "server_tokens") == ["off", "off"]

    def test_proxy_tells_the_app_the_request_was_https(self, committed):
        assert directives(committed, "proxy_pass")[0] == "http://127.0.0.1:8000"
        assert "X-Forwarded-Proto https" in directives(committed, "proxy_set_header")

    def test_body_limit_is_the_app_default(self, committed):
        assert directives(committed, "client_max_body_size") == ["2621440"]

    def test_plain_http_pages_redirect_permanently_to_https(self, committed):
        assert directives(committed, "return") == ["301 https://enclave.example.com$request_uri"]

    def test_plain_http_api_goes_to_the_app_marked_http_without_its_body(self, committed):
        # The app refuses it with problem+json and records any credential as exposed.
        http_block = committed[committed.rindex("server {"):]
        assert directives(http_block, "proxy_pass") == ["http://127.0.0.1:8000"]
        assert "X-Forwarded-Proto http" in directives(http_block, "proxy_set_header")
        assert directives(http_block, "proxy_pass_request_body") == ["off"]


def map_entries(text: str) -> list[tuple[str, str]]:
    """(regex, value) of every regex line of the access log's ``map``."""
    block = text[text.index(f"map $uri {nginx.LOG_PATH_VARIABLE} {{"):]
    block = block[:block.index("}")]
    return re.findall(r'^\s*"~(.*)" "(.*)";$', block, flags=re.MULTILINE)


def logged_path(text: str, uri: str) -> str:
    """What the rendered map makes of ``uri`` (its regexes are PCRE that Python's re reads
    the same way; the first match wins, as in nginx)."""
    for regex, value in map_entries(text):
        found = re.match(regex, uri)
        if found:
            return re.sub(r"\$(\d)", lambda m, found=found: found.group(int(m.group(1))),
                          value)
    return uri


TOKEN_URIS = [p.replace(policy.PATH_TOKEN, "s3cretT0ken").replace(policy.PATH_ANY, "x")
              for r in policy.RULES if r["type"] == "path" for p in r["patterns"]]


class TestRenderedLogging:
    def test_both_servers_log_in_the_redacted_format(self, committed):
        assert directives(committed, "access_log") == [
            f"{nginx.ACCESS_LOG} {nginx.LOG_FORMAT}"] * 2

    def test_log_format_has_no_raw_uri_query_or_referer(self, committed):
        (log_format,) = directives(committed, "log_format")
        assert log_format.startswith(f"{nginx.LOG_FORMAT} ")
        assert nginx.LOG_PATH_VARIABLE in log_format
        for variable in re.findall(r"\$\w+", log_format):
            assert variable not in ("$request", "$request_uri", "$uri", "$args",
                                    "$query_string", "$http_referer", "$document_uri")
            assert not variable.startswith("$arg_")

    @pytest.mark.parametrize("uri", TOKEN_URIS)
    def test_token_segment_of_every_policy_pattern_is_replaced(self, committed, uri):
        assert logged_path(committed, uri + "/more") == (
            uri.replace("s3cretT0ken", "[REDACTED:one_time_token]") + "/more")

    @pytest.mark.parametrize("uri", ["/app/people/", "/app/signup/", "/app/invitee/x", "/"])
    def test_other_paths_are_logged_as_they_are(self, committed, uri):
        assert logged_path(committed, uri) == uri

    def test_errors_on_token_paths_are_not_logged(self, committed):
        (location,) = [line.strip() for line in committed.splitlines()
                       if line.strip().startswith("location ~ ")]
        regex = location.split(" ", 2)[2].rstrip(" {")
        block = committed[committed.index(location):]
        assert directives(block[:block.index("}")], "error_log") == ["/dev/null"]
        assert all(re.match(regex, uri) for uri in TOKEN_URIS)
        assert not any(re.match(regex, uri) for uri in ("/app/signup/", "/app/people/"))


class TestNginxAcceptsConfig:
    def test_nginx_t_accepts_the_committed_config(self, committed, tmp_path):
        if not NGINX.exists():
            pytest.skip(f"{NGINX} is not installed")
        pki = make_pki(tmp_path)
        site = committed.replace(nginx.CERTIFICATE, str(pki.ec_cert)).replace(
            nginx.CERTIFICATE_KEY, str(pki.ec_key)).replace(
            nginx.ACCESS_LOG, str(tmp_path / "edge-access.log"))
        assert site.count(str(tmp_path)) == 4
        (tmp_path / "enclave.conf").write_text(site)
        main = nginx_main_config(tmp_path, tmp_path / "enclave.conf")
        proc = subprocess.run(nginx_argv(main, "-t"), capture_output=True, text=True,
                              timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "test is successful" in proc.stderr
        assert "[warn]" not in proc.stderr


@pytest.mark.tls
class TestEdge:
    """The same controls that check ``enclave serve`` pass against the rendered edge."""

    @pytest.mark.parametrize("control_id", SERVER_CONTROLS)
    def test_control_passes_against_nginx_edge(self, nginx_edge, control_id):
        result = run_one(registry()[control_id], nginx_edge.probe)
        assert result.status == PASS, result.evidence

    def test_static_headers_are_sent_once_not_twice(self, nginx_edge):
        probe = nginx_edge.probe
        with contextlib.closing(http.client.HTTPSConnection(
                "127.0.0.1", nginx_edge.https_port, timeout=10,
                context=ssl.create_default_context(cafile=probe.ca_file))) as conn:
            conn.request("GET", "/", headers={"Host": "localhost"})
            names = [name.lower() for name, _ in conn.getresponse().getheaders()]
        for name in (*headers.static_headers(False), "Content-Security-Policy"):
            assert names.count(name.lower()) == 1, name

    def _send(self, nginx_edge, method: str, path: str, headers: dict | None = None) -> int:
        with contextlib.closing(http.client.HTTPSConnection(
                "127.0.0.1", nginx_edge.https_port, timeout=10,
                context=ssl.create_default_context(cafile=nginx_edge.probe.ca_file))) as conn:
            conn.putrequest(method, path, skip_host=True)
            for name, value in {"Host": "localhost", **(headers or {})}.items():
                conn.putheader(name, value)
            conn.endheaders()
            return conn.getresponse().status

    def test_edge_logs_hold_no_token_and_no_query(self, nginx_edge):
        tokens = [secrets.token_urlsafe(24) for _ in range(4)]
        term = "alice." + secrets.token_hex(6)
        too_big = {"Content-Length": str(10 * 1024 * 1024)}  # refused (413) and logged
        statuses = [
            self._send(nginx_edge, "GET", f"/app/invite/{tokens[0]}"),
            self._send(nginx_edge, "GET", f"//app/setup/{tokens[1]}/x"),
            self._send(nginx_edge, "GET", f"/app/login/?next=/app/signup/{tokens[2]}"),
            self._send(nginx_edge, "GET", f"/app/people/?q={term}"),
            self._send(nginx_edge, "POST", f"/app/password/reset/{tokens[3]}", too_big),
            self._send(nginx_edge, "POST", "/app/people/", too_big),
        ]
        access = nginx_edge.access_log.read_text()
        errors = nginx_edge.error_log.read_text()
        assert statuses == [404, 404, 200, 302, 413, 413]
        assert '"GET /app/invite/[REDACTED:one_time_token] HTTP/1.1" 404' in access
        assert '"GET /app/setup/[REDACTED:one_time_token]/x HTTP/1.1" 404' in access
        assert '"GET /app/login/ HTTP/1.1" 200' in access
        # The same refusal elsewhere is logged: the token path's is left out, not lost.
        assert '"POST /app/people/ HTTP/1.1"' in errors
        assert "/app/password/reset/" not in errors
        for value in (*tokens, term):
            assert value not in access
        for value in tokens:
            assert value not in errors
