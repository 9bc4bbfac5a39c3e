"""The access log: one JSON line per request, with the request's trace id."""

from __future__ import annotations

import time

import structlog
from django.http import HttpRequest, HttpResponse

from enclave.logs.pipeline import ACCESS_LOGGER, flush_stores, get_policy

access_log = structlog.get_logger(ACCESS_LOGGER)


def safe_path(request: HttpRequest) -> str:
    """The path and query string redacted by the policy: one-time tokens in the path (path
    rules), sensitive and personal query parameters (key and query rules), other values
    through the detectors."""
    policy = get_policy()
    path = policy.redact_text(request.path)
    query = request.META.get("QUERY_STRING", "")
    return f"{path}?{policy.redact_query(query)}" if query else path


class AccessLogMiddleware:
    """Binds the trace id for every record of the request, then logs the request line.

    Sits right after TraceIdMiddleware, so error responses made further in (problem+json
    with its ``trace_id``) are logged with the same id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trace_id = getattr(request, "trace_id", "")
        start = time.perf_counter()
        tokens = structlog.contextvars.bind_contextvars(trace_id=trace_id)
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            access_log.info(
                "request", method=request.method, path=safe_path(request), status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**tokens)
            flush_stores()
