"""The response-header policy, as data. Same values are rendered into deploy/nginx.

Tested header-by-header in tests/core/test_headers.py; the nginx config is generated
from :data:`STATIC_HEADERS` so the embedded server and the edge cannot drift apart.
"""

from __future__ import annotations

from django.conf import settings

HSTS_MAX_AGE = 63_072_000

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media",
        "fullscreen", "geolocation", "gyroscope", "magnetometer", "microphone", "midi",
        "payment", "picture-in-picture", "publickey-credentials-get", "usb",
        "screen-wake-lock", "xr-spatial-tracking",
    )
)


def hsts_value(preload: bool) -> str:
    return f"max-age={HSTS_MAX_AGE}; includeSubDomains" + ("; preload" if preload else "")


def csp_value(nonce: str | None) -> str:
    """Strict CSP: nothing by default, our own origin for assets, nonces for scripts/styles."""
    nonce_src = f" 'nonce-{nonce}'" if nonce else ""
    directives = {
        "default-src": "'none'",
        "script-src": f"'self'{nonce_src}",
        "style-src": f"'self'{nonce_src}",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "manifest-src": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "object-src": "'none'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items()) + "; upgrade-insecure-requests"


# A document we serve but did not write (an email's rendered HTML, for its preview):
# CSP's sandbox gives it an opaque origin (no cookies, no reaching the app), no script
# runs, nothing may frame it, and only its inline styles and data: images load — nothing
# is fetched from elsewhere, so a template cannot send the previewed person's values to
# a third party through the previewing member's browser.
SANDBOXED_DOCUMENT_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def static_headers(preload: bool) -> dict[str, str]:
    """Headers identical on every response (no per-request part)."""
    return {
        "Strict-Transport-Security": hsts_value(preload),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


def response_headers(nonce: str | None) -> dict[str, str]:
    """Every security header for one response, with the request's CSP nonce."""
    values = static_headers(settings.SECURE_HSTS_PRELOAD)
    values["Content-Security-Policy"] = csp_value(nonce)
    return values


# Headers a compliant deployment must send; the header control checks these names.
REQUIRED = (
    "Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options",
    "Referrer-Policy", "Permissions-Policy", "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy", "X-Frame-Options",
)
