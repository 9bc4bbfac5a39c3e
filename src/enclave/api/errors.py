"""DRF exception handler: every API error becomes RFC 9457 problem+json.

Besides DRF's own exceptions it maps what the domain layer raises: Django's
``ValidationError`` from actions (→ 422 ``validation`` with ``errors`` per field, or 409
``conflict`` when the only problem is a uniqueness clash), ``Http404`` and
``PermissionDenied``; ``MissingReference`` (a body naming a person, segment or topic the
account does not have) → 409 ``conflict``. Exceptions may name their problem type with a
``problem_slug`` attribute (e.g. the API-key authentication failures); otherwise the
status decides it. Anything else is left to Django, whose ``handler500`` answers /api/
paths with a ``server-error`` problem.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import set_rollback

from enclave.core import problems, ratelimit
from enclave.core.validation import MissingReference

_SLUGS = {
    400: "invalid-body", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 409: "conflict",
    413: "payload-too-large", 415: "unsupported-media-type", 422: "validation",
    429: "rate-limited",
}
# Messages the people/field actions use for a uniqueness clash: answered as 409.
CONFLICT_MESSAGES = frozenset({
    "Another person has this email address.",
    "Another person has this external id.",
    "A field with this key exists.",
    # Segments (enclave.audience.actions / rules)
    "Another segment has this name.",
    "Other segments refer to this one; change them first.",
    "A segment cannot refer to itself, directly or through other segments.",
    "With the segments it refers to, this rule would have more than 200 conditions.",
    "This segment is a static list: it has no rules; add people to it.",
    "People join a dynamic segment by its rules; add them to a static list instead.",
    "A topic with this key exists.",
    "This address was suppressed when its person was erased; it stays suppressed.",
    # Email templates (enclave.messaging.actions)
    "Another template has this name.",
    "This domain is added already.",
    "Another broadcast has this name.",
    "Broadcasts or transactional messages use this template; it stays with their record.",
})


class InvalidQuery(exceptions.APIException):
    """A query parameter is unknown or unusable (400 ``invalid-query``)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "A query parameter is not valid."
    problem_slug = "invalid-query"


class FieldNotQueryable(exceptions.APIException):
    """Search/filter on a field that is masked or hidden for the key (422)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This field cannot be queried with this key."
    problem_slug = "field-not-queryable"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."


class PlanRefusal(exceptions.APIException):
    """The account's plan does not allow it (``billing.entitlements``): 403 with the
    limit's own problem type (``plan-limit-reached``, ``sending-paused``)."""

    status_code = status.HTTP_403_FORBIDDEN

    def __init__(self, exc: DjangoValidationError) -> None:
        super().__init__(" ".join(exc.messages))
        self.problem_slug = exc.problem_slug


def field_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """``{field: [messages]}`` from a Django ValidationError (non-field → ``body``)."""
    if hasattr(exc, "error_dict"):
        return {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    return {"body": [str(m) for m in exc.messages]}


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field.sub": [messages]}`` (lists of messages
    under a field, dicts and list indexes joined with dots; non-field → ``body``)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" and not prefix else str(key)
            out.update(flatten_errors(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(detail, list) and all(not isinstance(v, dict | list) for v in detail):
        out.setdefault(prefix or "body", []).extend(str(v) for v in detail)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            out.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.setdefault(prefix or "body", []).append(str(detail))
    return out


def _from_django_validation(exc: DjangoValidationError) -> exceptions.APIException:
    if isinstance(exc, MissingReference):
        errors = field_errors(exc)
        conflict = Conflict(" ".join(m for ms in errors.values() for m in ms))
        conflict.errors = errors
        return conflict
    return invalid(field_errors(exc))


def invalid(errors: dict[str, list[str]]) -> exceptions.APIException:
    """422 ``validation`` listing ``errors``; 409 ``conflict`` (same ``errors``) when every
    one is a uniqueness clash — the request is valid, the current data is in the way."""
    messages = {m for ms in errors.values() for m in ms}
    if messages and messages <= CONFLICT_MESSAGES:
        conflict = Conflict(" ".join(sorted(messages)))
        conflict.errors = errors
        return conflict
    return exceptions.ValidationError(errors)


def _normalise(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or "Not found.")
    if isinstance(exc, ObjectDoesNotExist):
        # The row vanished between the access check and the action's locked re-read
        # (e.g. erased by a concurrent request): for the client it is simply gone.
        return exceptions.NotFound("Not found (it was removed while this request ran).")
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, ratelimit.Limited):
        return exceptions.Throttled(wait=exc.retry_after)
    if isinstance(exc, DjangoValidationError):
        if getattr(exc, "problem_slug", None):
            return PlanRefusal(exc)
        return _from_django_validation(exc)
    return exc


def exception_handler(exc: Exception, context: dict):
    """Map DRF/Django exceptions to problem responses; None lets 500 handling take over."""
    request = context.get("request")
    exc = _normalise(exc)
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    status_code = exc.status_code
    extra: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        status_code = 422
        extra["errors"] = flatten_errors(exc.detail)
        detail = "Some fields are invalid; see errors."
    else:
        detail = str(exc.detail)
        if getattr(exc, "errors", None):
            extra["errors"] = exc.errors
        if getattr(exc, "required_scope", None):
            extra["required_scope"] = exc.required_scope
    headers = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait)))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="enclave"'
    slug = getattr(exc, "problem_slug", None)
    if slug not in problems.PROBLEMS:
        slug = _SLUGS.get(status_code, "bad-request")
    return problems.problem_response(
        request._request if request is not None else None, slug, detail, status=status_code,
        headers=headers, **extra,
    )
