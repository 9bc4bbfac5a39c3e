"""Transport and header policy applied to every response.

Order (settings.MIDDLEWARE): forwarded proto → trace id → HTTPS-only → security headers →
body limit. The HTTPS and header policies are data in :mod:`enclave.core.headers`; this
module applies them.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect

from enclave.core import audit, headers, problems
from enclave.core.views import render_error_page

logger = logging.getLogger(__name__)


class ForwardedProtoMiddleware:
    """Behind a TLS edge, the scheme the client used is the edge's ``X-Forwarded-Proto``
    — but only when the socket peer is a trusted proxy (:func:`audit.from_trusted_proxy`,
    the same decision as for ``X-Real-IP``). From any other peer the header is ignored:
    a client reaching the app server directly cannot claim https.

    Django's SECURE_PROXY_SSL_HEADER would trust the header from every peer, so it stays
    off (settings.py) and this sets the request's WSGI scheme instead, which is what
    ``request.is_secure()`` reads. It fails closed: without this middleware a proxied
    request is plain HTTP. It must come first; everything after asks ``is_secure()``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        proto = request.META.get("HTTP_X_FORWARDED_PROTO")
        if proto is not None and audit.from_trusted_proxy(request):
            # The first value, as Django reads it; our nginx edge overwrites the header.
            first = proto.split(",", 1)[0].strip().lower()
            request.META["wsgi.url_scheme"] = "https" if first == "https" else "http"
        return self.get_response(request)


class TraceIdMiddleware:
    """Give each request a trace id (echoed as ``X-Trace-Id`` and in problem documents)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.trace_id = secrets.token_hex(16)
        response = self.get_response(request)
        response["X-Trace-Id"] = request.trace_id
        return response


class HttpsOnlyMiddleware:
    """Plain-HTTP page requests get a 301 to the same https URL; API requests are refused.

    An API request is never redirected: a client that followed the redirect would have
    sent its credential in clear already, and silently "working" hides that. If the
    plain request carried a credential, it is recorded as exposed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.is_secure():
            return self.get_response(request)
        from enclave.core.actions import credentials_in_request, do_record_credential_exposure

        found = credentials_in_request(request)
        if found:
            do_record_credential_exposure(request, found, limited=not recording_allowed(request))
        if problems.wants_problem_json(request):
            return problems.problem_response(
                request, "https-required",
                "This API only answers over HTTPS; resend the request to "
                f"{https_url(request)}"
                + (". The credential it carried was sent in clear and is now treated as "
                   "exposed: rotate it." if found else "."),
            )
        return HttpResponsePermanentRedirect(https_url(request))


EXPOSURE_RATES = ("exposure.ip", "exposure.global")


def recording_allowed(request: HttpRequest) -> bool:
    """Whether this plain-HTTP request may write exposure rows: counted per client IP,
    then (only if that allows it, so one address cannot spend everyone's budget) against
    the global limit — the named limits ``exposure.ip`` / ``exposure.global`` on the
    project's one rate limiter (Redis or in-process, enclave.core.ratelimit). No address
    is exempt: being over the limit refuses nothing, it only skips rows.

    Only recording is limited. Refusal and revoking an API key sent in clear happen on
    every request, so flooding the listener cannot save a key from revocation.
    """
    from enclave.core import ratelimit

    ip = audit.client_ip(request) or "unknown"
    for name, ident in zip(EXPOSURE_RATES, (f"ip:{ip}", "all"), strict=True):
        decision = ratelimit.hit(name, ident)
        if not decision.allowed:
            if decision.count == decision.limit + 1:  # once per window, not per request
                logger.warning("credential exposure recording over the %s limit: no rows "
                               "for %s s (requests are still refused, keys still revoked)",
                               name, decision.retry_after)
            return False
    return True


def https_url(request: HttpRequest) -> str:
    """The https:// URL for this request: same host and path, the configured HTTPS port."""
    host = urlsplit(f"//{request.get_host()}").hostname or settings.CONFIG.public_host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = settings.CONFIG.https_port
    netloc = host if port == 443 or settings.CONFIG.behind_proxy else f"{host}:{port}"
    return f"https://{netloc}{request.get_full_path()}"


class SecurityHeadersMiddleware:
    """Adds the header policy (HSTS, CSP with a per-request nonce, ...) to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        for name, value in headers.response_headers(request.csp_nonce).items():
            response[name] = value
        if getattr(response, "cross_origin_resource", False):
            # A file other sites load by design (the tracking library).
            response["Cross-Origin-Resource-Policy"] = "cross-origin"
        if getattr(response, "sandboxed_document", False):
            response["Content-Security-Policy"] = headers.SANDBOXED_DOCUMENT_CSP
            response["X-DNS-Prefetch-Control"] = "off"
        return response


class BodySizeLimitMiddleware:
    """Refuse bodies over ``ENCLAVE_MAX_BODY_BYTES`` with 413 before any view reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return too_large_or_bad(request, "bad-request", "Content-Length is not a number.")
        if length > settings.CONFIG.max_body_bytes:
            return too_large(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, RequestDataTooBig):
            return too_large(request)
        return None


def too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.CONFIG.max_body_bytes
    return too_large_or_bad(
        request, "payload-too-large", f"The request body is larger than {limit} bytes."
    )


def too_large_or_bad(request: HttpRequest, slug: str, detail: str) -> HttpResponse:
    if problems.wants_problem_json(request):
        return problems.problem_response(request, slug, detail)
    status = problems.PROBLEMS[slug].status
    return render_error_page(request, status, problems.PROBLEMS[slug].title, detail)
