"""Render the nginx edge configuration (deploy/nginx/enclave.conf) from Enclave's policy.

The TLS policy (:mod:`enclave.server.tls`), the static security headers
(:func:`enclave.core.headers.static_headers`) and the body limit come from the same data
the embedded server uses, so the edge and ``make run`` cannot drift apart:
tests/server/test_nginx.py fails when the committed file differs from :func:`render`.

``python -m enclave.server.nginx`` prints the file; ``--write`` updates the committed one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from enclave import config
from enclave.core import headers
from enclave.server import tls
from enclave.server.probes import version_name

CONF_PATH = config.PROJECT_ROOT / "deploy" / "nginx" / "enclave.conf"
PUBLIC_URL = "https://enclave.example.com"
CERTIFICATE = "/etc/enclave/tls/fullchain.pem"
CERTIFICATE_KEY = "/etc/enclave/tls/privkey.pem"
UPSTREAM = "127.0.0.1:8000"
# OpenSSL group names as nginx's ssl_ecdh_curve spells them.
NGINX_GROUPS = {"X25519": "X25519", "P-256": "prime256v1", "P-384": "secp384r1"}


def render(*, public_url: str = PUBLIC_URL, certificate: str = CERTIFICATE,
           certificate_key: str = CERTIFICATE_KEY, upstream: str = UPSTREAM,
           preload: bool = False, https_port: int = 443, http_port: int = 80) -> str:
    """The complete nginx include (``http {}`` context) for one Enclave deployment.

    ``public_url`` is the deployment's ENCLAVE_PUBLIC_URL: its host is the server name,
    and redirects and problem types point at it exactly as the app's own would.
    """
    public_url = public_url.rstrip("/")
    server_name = urlsplit(public_url).hostname
    if not public_url.startswith("https://") or not server_name:
        raise ValueError(f"public_url must be an https:// origin, got {public_url!r}")
    return "\n".join([
        *_preamble(),
        *_https_server(server_name, https_port, certificate, certificate_key, upstream,
                       preload),
        "",
        *_http_server(server_name, http_port, public_url, upstream),
        "",
    ])


def _preamble() -> list[str]:
    return [
        "# Enclave edge: TLS termination in front of gunicorn, in nginx's http {} context",
        "# (e.g. /etc/nginx/conf.d/enclave.conf).",
        "# GENERATED from enclave/server/tls.py and enclave/core/headers.py by",
        "# `python -m enclave.server.nginx --write`; do not edit (tests/server/test_nginx.py",
        "# fails on drift). For your host, print your own copy instead:",
        "#   python -m enclave.server.nginx --public-url https://<host> --certificate ...",
        "# and run the app with ENCLAVE_BEHIND_PROXY=1 and the same ENCLAVE_PUBLIC_URL.",
        "",
    ]


def _https_server(server_name: str, port: int, certificate: str, certificate_key: str,
                  upstream: str, preload: bool) -> list[str]:
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
        "",
        "    # Static security headers (enclave/core/headers.py). The app sends them as well;",
        "    # hiding its copies leaves exactly one of each, also on errors nginx generates.",
        "    # Content-Security-Policy is deliberately absent: it carries a per-request nonce,",
        "    # so only the app may set it. Never add or override it here.",
        *_static_headers(preload),
        "",
        "    location / {",
        f"        proxy_pass http://{upstream};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        "        # Overwrites anything the client sent: the app trusts these from the edge.",
        "        proxy_set_header X-Forwarded-Proto https;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_redirect off;",
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


def _http_server(server_name: str, port: int, public_url: str, upstream: str) -> list[str]:
    return [
        "server {",
        f"    listen {port};",
        f"    listen [::]:{port};",
        f"    server_name {server_name};",
        "    server_tokens off;",
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
    parser.add_argument("--hsts-preload", action="store_true",
                        help="as with ENCLAVE_HSTS_PRELOAD=1")
    args = parser.parse_args(argv)
    options = {"public_url": args.public_url, "certificate": args.certificate,
               "certificate_key": args.certificate_key, "upstream": args.upstream,
               "preload": args.hsts_preload}
    if args.write:
        if vars(args) != {**vars(parser.parse_args([])), "write": True}:
            parser.error("--write renders the template with defaults; print yours instead")
        Path(CONF_PATH).write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render(**options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
