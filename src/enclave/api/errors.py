"""DRF exception handler: every API error becomes RFC 9457 problem+json."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.views import set_rollback

from enclave.core import problems

_SLUGS = {
    400: "invalid-body", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 409: "conflict",
    413: "payload-too-large", 415: "unsupported-media-type", 422: "validation",
    429: "rate-limited",
}


def exception_handler(exc: Exception, context: dict):
    """Map DRF/Django exceptions to problem responses; None lets 500 handling take over."""
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    status = exc.status_code
    extra: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        status = 422
        extra["errors"] = exc.detail
        detail = "Some fields are invalid."
    elif isinstance(exc, exceptions.ParseError):
        detail = str(exc.detail)
    else:
        detail = str(exc.detail)
    headers = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="enclave"'
    slug = _SLUGS.get(status, "bad-request")
    return problems.problem_response(
        request._request if request is not None else None, slug, detail, status=status,
        headers=headers, **extra,
    )
