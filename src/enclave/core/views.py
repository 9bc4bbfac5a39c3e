"""Error views: problem+json under /api/, friendly HTML pages elsewhere. Never a traceback."""

from __future__ import annotations

import sys

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from enclave.core import problems


def render_error_page(request: HttpRequest, status: int, title: str, detail: str) -> HttpResponse:
    return render(
        request, "core/error.html", {"status": status, "title": title, "detail": detail},
        status=status,
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = "The request could not be understood."
    if exception is not None and "Invalid HTTP_HOST" in str(exception):
        detail = "This server does not answer for that host name."
    if problems.wants_problem_json(request):
        return problems.problem_response(request, "bad-request", detail)
    return render_error_page(request, 400, "Bad request", detail)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = "You do not have access to this page."
    if exception is not None and getattr(exception, "safe_to_show", False):
        detail = str(exception)  # access.NotAuthorized: names a permission, never a value
    if problems.wants_problem_json(request):
        return problems.problem_response(request, "forbidden", detail)
    return render_error_page(request, 403, "Forbidden", detail)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if problems.wants_problem_json(request):
        return problems.problem_response(
            request, "not-found", f"Nothing exists at {request.path}."
        )
    return render_error_page(
        request, 404, "Page not found", "We could not find that page. Check the address."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler, called while the exception is being handled — so it can tell
    a database that cannot take the request (a failover: the primary gone or read-only)
    from a bug: that is a 503 with Retry-After, which clients and SDKs retry (ingest's
    message ids make the retry safe), never a 500."""
    if database_unavailable(sys.exc_info()[1]):
        detail = ("The database cannot take this request right now (failover or "
                  "maintenance); nothing was changed. Retry after Retry-After seconds.")
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if problems.wants_problem_json(request):
            return problems.problem_response(request, "unavailable", detail,
                                             headers=headers)
        response = render_error_page(request, 503, "Try again in a moment", detail)
        response["Retry-After"] = headers["Retry-After"]
        return response
    detail = "Something went wrong on our side. It has been logged; quote the trace id."
    if problems.wants_problem_json(request):
        return problems.problem_response(request, "server-error", detail)
    return render_error_page(request, 500, "Server error", detail)


RETRY_AFTER_SECONDS = 5
# PostgreSQL: read-only transaction (a replica, or a primary being demoted), the server
# shutting down or not yet accepting connections, too many connections, and the
# connection exceptions (class 08).
_UNAVAILABLE_STATES = frozenset({"25006", "57P01", "57P02", "57P03", "53300"})


def database_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc`` is a database error saying the database cannot take requests
    now, rather than that the request or the code is wrong. Only database errors count
    (a bug raised while one was being handled stays a 500), and only their explicit
    causes are followed (how Django wraps the driver's error)."""
    from django.db import Error, InterfaceError, OperationalError

    if not isinstance(exc, Error):
        return False
    seen = 0
    while exc is not None and seen < 5:
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if state and (state in _UNAVAILABLE_STATES or state.startswith("08")):
            return True
        if isinstance(exc, OperationalError | InterfaceError) and \
                _unavailable_text(str(exc)):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False


def _unavailable_text(message: str) -> bool:
    """SQLite's and a lost connection's words for it (their errors may carry no state)."""
    message = message.lower()
    return any(words in message for words in (
        "readonly database", "read-only transaction", "database is locked",
        "server closed the connection", "connection refused", "connection failed",
        "connection is closed", "connection already closed", "could not connect",
        "terminating connection"))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    detail = "The form expired or was not sent from this site. Reload the page and try again."
    if problems.wants_problem_json(request):
        return problems.problem_response(request, "forbidden", detail)
    return render_error_page(request, 403, "Form check failed", detail)


def problem_type(request: HttpRequest, slug: str) -> HttpResponse:
    """Human documentation for each problem ``type`` URI."""
    problem = problems.PROBLEMS.get(slug)
    if problem is None:
        raise Http404(slug)
    return render(request, "core/problem.html", {"problem": problem})
