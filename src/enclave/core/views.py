"""Error views: problem+json under /api/, friendly HTML pages elsewhere. Never a traceback."""

from __future__ import annotations

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
    detail = "Something went wrong on our side. It has been logged; quote the trace id."
    if problems.wants_problem_json(request):
        return problems.problem_response(request, "server-error", detail)
    return render_error_page(request, 500, "Server error", detail)


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
