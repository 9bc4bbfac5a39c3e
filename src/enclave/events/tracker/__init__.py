"""The browser tracking library websites load from their own Enclave (``/t/v1/analytics.js``,
docs/sdks.md "Website tracking"), and its Subresource Integrity value for the snippet.

The file is read once per process; its ``sha384`` digest is what the snippet's
``integrity`` attribute carries, so a page refuses the script if anything between the
server and the visitor changed it. It is served with ``Access-Control-Allow-Origin: *``
and ``Cross-Origin-Resource-Policy: cross-origin`` (other sites load it; it holds nothing
of any account) and cached for a day.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path

from django.http import HttpRequest, HttpResponse

PATH = "/t/v1/analytics.js"
_FILE = Path(__file__).with_name("analytics.js")


@functools.cache
def source() -> bytes:
    return _FILE.read_bytes()


@functools.cache
def integrity() -> str:
    """The ``integrity`` attribute's value (SRI, sha384)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(source()).digest()).decode("ascii")


def snippet(base_url: str, write_key: str, *, require_consent: bool) -> str:
    """The HTML a site adds to its pages to send page views with ``write_key``."""
    consent = ", requireConsent: true" if require_consent else ""
    ask = ("\n  // After the visitor agrees (your consent banner): enclave.consent(true);"
           if require_consent else "")
    return (f'<script src="{base_url}{PATH}" integrity="{integrity()}" '
            f'crossorigin="anonymous"></script>\n'
            f'<script>\n  enclave.load({{writeKey: "{write_key}"{consent}}});\n'
            f'  enclave.page();{ask}\n</script>')


def library(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    response["Access-Control-Allow-Origin"] = "*"
    response.cross_origin_resource = True  # core.middleware.SecurityHeadersMiddleware
    return response
