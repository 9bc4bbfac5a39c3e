"""Problem types (RFC 9457): one registry, stable slugs, documented at /problems/<slug>.

Each API error carries ``type`` = ``<public_url>/problems/<slug>``, a fixed ``title``, a
request-specific ``detail`` and the request's ``trace_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from enclave.core import jsondepth

CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str


PROBLEMS: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType("https-required", 403, "HTTPS required",
                    "The API only answers over HTTPS. The request was not processed. If it "
                    "carried a credential, that credential is treated as exposed (an API "
                    "key is revoked) and should be rotated."),
        ProblemType("bad-request", 400, "Bad request",
                    "The request could not be understood (for example an unknown Host header)."),
        ProblemType("invalid-body", 400, "Invalid request body",
                    "The body is not valid JSON or does not match the expected shape."),
        ProblemType("too-deep", 400, "JSON nested too deeply",
                    "The JSON body nests arrays and objects more than "
                    f"{jsondepth.MAX_DEPTH} levels deep. Nothing was processed; send a "
                    "flatter document."),
        ProblemType("validation", 422, "Validation failed",
                    "One or more fields are invalid; see `errors` for each field."),
        ProblemType("unauthenticated", 401, "Authentication required",
                    "Send valid credentials with the request."),
        ProblemType("forbidden", 403, "Forbidden",
                    "The credentials are valid but do not allow this action."),
        ProblemType("not-found", 404, "Not found",
                    "No resource exists at this URL (or it belongs to another account)."),
        ProblemType("method-not-allowed", 405, "Method not allowed",
                    "This URL does not accept that HTTP method."),
        ProblemType("not-acceptable", 406, "Not acceptable",
                    "The API answers with application/json or application/problem+json."),
        ProblemType("conflict", 409, "Conflict",
                    "The request conflicts with the current state of the resource."),
        ProblemType("payload-too-large", 413, "Payload too large",
                    "The request body exceeds the configured limit."),
        ProblemType("unsupported-media-type", 415, "Unsupported media type",
                    "Send the body as application/json."),
        ProblemType("rate-limited", 429, "Too many requests",
                    "Slow down; retry after the number of seconds in Retry-After."),
        ProblemType("origin-not-allowed", 403, "Origin not allowed",
                    "A browser key works only from the origins listed on it (the Origin "
                    "header of the page that sends); a server key never works from a web "
                    "page. Nothing was stored."),
        # Billing (enclave.billing): what the account's plan allows.
        ProblemType("plan-limit-reached", 403, "Plan limit reached",
                    "The account's plan does not allow more of this (people, team "
                    "members or emails this month); `detail` says which. Nothing was "
                    "stored. Choose a larger plan on the billing page, or make room."),
        ProblemType("sending-paused", 403, "Sending paused",
                    "The account's subscription is overdue beyond its grace period, so "
                    "sending is paused; nothing was sent or deleted. Sending resumes "
                    "once the payment method is updated on the billing page."),
        ProblemType("unavailable", 503, "Database unavailable",
                    "The database cannot take the request right now (a failover or "
                    "maintenance); nothing was changed. Retry after Retry-After seconds."),
        ProblemType("busy", 503, "Try again shortly",
                    "Concurrent writes to the same data got in the way; nothing was "
                    "stored. Send the same request again after Retry-After seconds."),
        ProblemType("server-error", 500, "Internal server error",
                    "Something failed on our side. Quote the trace_id when reporting it."),
        # REST API (enclave.api): query-string problems and visibility-limited queries.
        ProblemType("invalid-query", 400, "Invalid query parameters",
                    "A query parameter is unknown or its value cannot be used (for example "
                    "a page cursor that was not issued by this API)."),
        ProblemType("idempotency-key-missing", 400, "Idempotency-Key header missing",
                    "A send must carry an Idempotency-Key header (new for each message), "
                    "so that retrying it never sends twice."),
        ProblemType("field-not-queryable", 422, "Field cannot be queried",
                    "Search and filters accept only fields that are visible to the "
                    "credential; a masked or hidden field cannot be queried."),
    )
}


def type_uri(slug: str) -> str:
    return f"{settings.CONFIG.public_url}/problems/{slug}"


def problem_body(request: HttpRequest | None, slug: str, detail: str, **extra: object) -> dict:
    """Return the problem document for ``slug`` (which must be registered)."""
    problem = PROBLEMS[slug]
    body: dict = {
        "type": type_uri(slug),
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.path
        body["trace_id"] = getattr(request, "trace_id", None)
    body.update(extra)
    return body


def problem_response(
    request: HttpRequest | None, slug: str, detail: str, *, status: int | None = None,
    headers: dict[str, str] | None = None, **extra: object,
) -> HttpResponse:
    """An ``application/problem+json`` response for a registered problem type."""
    body = problem_body(request, slug, detail, **extra)
    if status is not None:
        body["status"] = status
    return HttpResponse(
        json.dumps(body), status=body["status"], content_type=CONTENT_TYPE, headers=headers,
    )


def wants_problem_json(request: HttpRequest) -> bool:
    """API paths answer errors as problem+json; everything else as HTML pages."""
    return request.path.startswith("/api/")
