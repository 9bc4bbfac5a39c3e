"""Render the nginx edge configuration (deploy/nginx/enclave.conf) from Enclave's policy.

The TLS policy (:mod:`enclave.server.tls`), the static security headers
(:func:`enclave.core.headers.static_headers`), the body limit and the paths that carry
one-time tokens (the path rules of :mod:`enclave.logs.policy`) come from the same data the
embedded server uses, so the edge and ``make run`` cannot drift apart:
tests/server/test_nginx.py fails when the committed file differs from :func:`render`.

The edge's access log has its own format: the path with token segments replaced (a
``map`` from the policy's patterns), no query string (search terms, ``next=`` links) and no
Referer (a page opened from a token link is the Referer of everything it loads). nginx's
error log cannot be redacted and writes the request line, so errors on token paths are not
logged at the edge (the app logs those requests, redacted).

``python -m enclave.server.nginx`` prints the file; ``--write`` updates the committed one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from enclave import config
from enclave.core import headers
from enclave.logs import policy
from enclave.server import tls
from enclave.server.probes import version_name

CONF_PATH = config.PROJECT_ROOT / "deploy" / "nginx" / "enclave.conf"
PUBLIC_URL = "https://enclave.example.com"
CERTIFICATE = "/etc/enclave/tls/fullchain.pem"
CERTIFICATE_KEY = "/etc/enclave/tls/privkey.pem"
UPSTREAM = "127.0.0.1:8000"
ACCESS_LOG = "/var/log/nginx/enclave.access.log"
LOG_FORMAT = "enclave_redacted"
LOG_PATH_VARIABLE = "$enclave_log_path"
# OpenSSL group names as nginx's ssl_ecdh_curve spells them.
NGINX_GROUPS = {"X25519": "X25519", "P-256": "prime256v1", "P-384": "secp384r1"}


def render(*, public_url: str = PUBLIC_URL, certificate: str = CERTIFICATE,
           certificate_key: str = CERTIFICATE_KEY, upstream: str = UPSTREAM,
           preload: bool = False, https_port: int = 443, http_port: int = 80,
           access_log: str = ACCESS_LOG) -> str:
    """The complete nginx include (``http {}`` context) for one Enclave deployment.

    ``public_url`` is the deployment's ENCLAVE_PUBLIC_URL: its host is the server name,
    and redirects and problem types point at it exactly as the app's own would.
    """
    public_url = public_url.rstrip("/")
    server_name = urlsplit(public_url).hostname
    if not public_url.startswith("https://") or not server_name:
        raise ValueError(f"public_url must be an https:// origin, got {public_url!r}")
    paths = policy.load().paths
    return "\n".join([
        *_preamble(),
        *_redacted_log_format(paths),
        "",
        *_https_server(server_name, https_port, certificate, certificate_key, upstream,
                       preload, access_log, paths),
        "",
        *_http_server(server_name, http_port, public_url, upstream, access_log),
        "",
    ])


def _preamble() -> list[str]:
    return [
        "# Enclave edge: TLS termination in front of gunicorn, in nginx's http {} context",
        "# (e.g. /etc/nginx/conf.d/enclave.conf).",
        "# GENERATED from enclave/server/tls.py, enclave/core/headers.py and the path rules",
        "# of enclave/logs/policy.py by",
        "# `python -m enclave.server.nginx --write`; do not edit (tests/server/test_nginx.py",
        "# fails on drift). For your host, print your own copy instead:",
        "#   python -m enclave.server.nginx --public-url https://<host> --certificate ...",
        "# and run the app with ENCLAVE_BEHIND_PROXY=1 and the same ENCLAVE_PUBLIC_URL.",
        "",
    ]


def _map_entry(path: policy.PathRedactor, segments: tuple[str, ...]) -> str:
    """One ``map`` line: a regex over ``$uri`` (decoded, slashes merged) and the path
    rebuilt with the token segment(s) replaced, other segments and the rest kept."""
    regex, value, group = ["^"], [], 0
    for segment in segments:
        if segment == policy.PATH_TOKEN:
            regex.append("/[^/]+")
            value.append("/" + ("" if path.action == "remove" else f"[REDACTED:{path.name}]"))
        elif segment == policy.PATH_ANY:
            group += 1
            regex.append("/([^/]+)")
            value.append(f"/${group}")
        else:
            regex.append("/" + segment.replace(".", r"\."))
            value.append("/" + segment)
    regex.append("(.*)$")
    value.append(f"${group + 1}")
    return f'    "~{"".join(regex)}" "{"".join(value)}";'


def _token_location(paths: tuple[policy.PathRedactor, ...]) -> str:
    """A location regex for the paths of every token pattern (up to its first token,
    which must not be empty: ``/app/signup/`` itself is an ordinary page)."""
    prefixes = []
    for path in paths:
        for segments in path.patterns:
            head = segments[:segments.index(policy.PATH_TOKEN)]
            prefixes.append("".join("/[^/]+" if s == policy.PATH_ANY
                                    else "/" + s.replace(".", r"\.") for s in head) + "/")
    return f"^(?:{'|'.join(prefixes)})[^/]"


def _redacted_log_format(paths: tuple[policy.PathRedactor, ...]) -> list[str]:
    return [
        "# Access log without secrets (enclave/logs/policy.py path rules): one-time tokens in",
        "# the path are replaced; the query string (search terms, next= links) and the",
        "# Referer (a page opened from a token link is the Referer of all it loads) are left",
        "# out. Never log $request, $request_uri, $args or $http_referer.",
        f"map $uri {LOG_PATH_VARIABLE} {{",
        "    default $uri;",
        *(_map_entry(path, segments) for path in paths for segments in path.patterns),
        "}",
        f"log_format {LOG_FORMAT} '$remote_addr - [$time_iso8601] \"$request_method "
        f"{LOG_PATH_VARIABLE} $server_protocol\" $status $body_bytes_sent $request_time "
        "\"$http_user_agent\"';",
    ]


def _proxy(upstream: str, indent: str = "        ") -> list[str]:
    return [indent + line for line in (
        f"proxy_pass http://{upstream};",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "# Overwrites anything the client sent: the app trusts these from the edge.",
        "proxy_set_header X-Forwarded-Proto https;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_redirect off;",
    )]


def _https_server(server_name: str, port: int, certificate: str, certificate_key: str,
                  upstream: str, preload: bool, access_log: str,
                  paths: tuple[policy.PathRedactor, ...]) -> list[str]:
    protocols = " ".join(version_name(v) for v in tls.PROTOCOLS)
    curves = ":".join(NGINX_GROUPS[g] for g in tls.GROUPS)
    max_body = config.load({}).max_body_bytes
    return [
        "server {",
        f"    listen {port} ssl http2;",
        f"    listen [::]:{port} ssl http2;",
        f"    server_name {server_name};",
        "    server_tokens off;",
        "",
        f"    ssl_certificate {certificate};",
        f"    ssl_certificate_key {certificate_key};",
        "    # Mozilla intermediate, ECDHE + AEAD only (enclave/server/tls.py).",
        f"    ssl_protocols {protocols};",
        f"    ssl_ciphers {tls.TLS12_CIPHERS};",
        f"    ssl_conf_command Ciphersuites {tls.TLS13_CIPHERSUITES};",
        f"    ssl_ecdh_curve {curves};",
        "    # Server order with ChaCha20 for clients that prefer it (see tls.server_context).",
        "    ssl_prefer_server_ciphers on;",
        "    ssl_conf_command Options PrioritizeChaCha;",
        "    ssl_session_timeout 1d;",
        "    ssl_session_cache shared:EnclaveTLS:10m;",
        "    ssl_session_tickets off;",
        "    # No OCSP stapling: public CAs are retiring OCSP in favour of CRLs.",
        "",
        f"    client_max_body_size {max_body};",
        "    # Responses carry secrets (CSRF tokens); compressing them invites BREACH.",
        "    gzip off;",
        f"    access_log {access_log} {LOG_FORMAT};",
        "",
        "    # Static security headers (enclave/core/headers.py). The app sends them as well;",
        "    # hiding its copies leaves exactly one of each, also on errors nginx generates.",
        "    # Content-Security-Policy is deliberately absent: it carries a per-request nonce,",
        "    # so only the app may set it. Never add or override it here.",
        *_static_headers(preload),
        "",
        "    location / {",
        *_proxy(upstream),
        "    }",
        "",
        "    # One-time token links. nginx's error log writes the request line and upstream URL",
        "    # in clear and cannot be redacted: errors on these paths are not logged here (the",
        "    # app logs the requests it receives, redacted).",
        f"    location ~ {_token_location(paths)} {{",
        "        error_log /dev/null;",
        *_proxy(upstream),
        "    }",
        "}",
    ]


def _static_headers(preload: bool) -> list[str]:
    values = headers.static_headers(preload)
    lines = [f"    proxy_hide_header {name};" for name in values]
    for name, value in values.items():
        if '"' in value or "$" in value:
            raise ValueError(f"{name} value cannot be quoted for nginx: {value!r}")
        lines.append(f'    add_header {name} "{value}" always;')
    return lines


def _http_server(server_name: str, port: int, public_url: str, upstream: str,
                 access_log: str) -> list[str]:
    return [
        "server {",
        f"    listen {port};",
        f"    listen [::]:{port};",
        f"    server_name {server_name};",
        "    server_tokens off;",
        f"    access_log {access_log} {LOG_FORMAT};",
        "",
        "    # The API is refused, never redirected: a client that follows a redirect has",
        "    # already sent its credential in clear. The app answers the refusal itself",
        "    # (problem+json, https-required) so that it can record any credential the request",
        "    # carried as exposed; it trusts X-Forwarded-Proto from this edge only.",
        "    location /api/ {",
        f"        proxy_pass http://{upstream};",
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-Proto http;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_pass_request_body off;",
        '        proxy_set_header Content-Length "";',
        "    }",
        "",
        "    location / {",
        f"        return 301 {public_url}$request_uri;",
        "    }",
        "}",
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the configuration for one deployment, or ``--write`` the committed template."""
    parser = argparse.ArgumentParser(prog="python -m enclave.server.nginx",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help=f"update the committed template {CONF_PATH} (defaults only)")
    parser.add_argument("--public-url", default=PUBLIC_URL, help="as ENCLAVE_PUBLIC_URL")
    parser.add_argument("--certificate", default=CERTIFICATE)
    parser.add_argument("--certificate-key", default=CERTIFICATE_KEY)
    parser.add_argument("--upstream", default=UPSTREAM, help="gunicorn host:port")
    parser.add_argument("--access-log", default=ACCESS_LOG, help="the edge's access log file")
    parser.add_argument("--hsts-preload", action="store_true",
                        help="as with ENCLAVE_HSTS_PRELOAD=1")
    args = parser.parse_args(argv)
    options = {"public_url": args.public_url, "certificate": args.certificate,
               "certificate_key": args.certificate_key, "upstream": args.upstream,
               "preload": args.hsts_preload, "access_log": args.access_log}
    if args.write:
        if vars(args) != {**vars(parser.parse_args([])), "write": True}:
            parser.error("--write renders the template with defaults; print yours instead")
        Path(CONF_PATH).write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render(**options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
