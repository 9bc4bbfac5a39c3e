"""``POST /api/v1/events``: the ingest endpoint (thin edge: check, parse, call the action).

Authenticated by an API key with the ``events:write`` scope (the registry entry in
``enclave.access.endpoints``); throttled per key and per client IP with the ``ingest.*``
limits. The body is read raw and decoded by msgspec (``events.schema``) — no DRF parser
or serializer on the hot path. 202 is sent only after the transaction has committed.
"""

from __future__ import annotations

import msgspec
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request

from enclave.api.base import ApiView
from enclave.api.errors import Conflict, invalid
from enclave.api.parsers import TooDeep
from enclave.apikeys.throttle import IngestIpThrottle, IngestKeyThrottle
from enclave.core import jsondepth
from enclave.events import schema
from enclave.events.actions import IngestConflict, do_ingest_events

JSON = "application/json"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The ingest body may be at most {schema.MAX_BODY_BYTES} bytes."
    problem_slug = "payload-too-large"


class _AcceptedResponse(msgspec.Struct):
    received: int
    stored: int
    duplicates: list[int]


_encode = msgspec.json.Encoder().encode

RESPONSE_SCHEMA = {
    "type": "object",
    "description": "The batch is durably stored. `duplicates` lists the positions of "
                   "events whose message_id was already received in the last 24 hours "
                   "(acknowledged, not stored again).",
    "properties": {
        "received": {"type": "integer", "minimum": 1},
        "stored": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    },
    "required": ["received", "stored", "duplicates"],
    "additionalProperties": False,
}


def is_media(content_type: str, accepted: tuple[str, ...] = (JSON,)) -> bool:
    """``content_type`` is one of ``accepted``, with no parameter or a UTF-8 charset."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() not in accepted:
        return False
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params else ""
    return not params.strip() or charset in ("utf-8", "utf8")


class IngestView(ApiView):
    """Send events: one ``identify``/``track`` object, or ``{"batch": [...]}``."""

    throttle_classes = [IngestIpThrottle, IngestKeyThrottle]

    @extend_schema(
        operation_id="events_ingest",
        tags=["events"],
        summary="Ingest events (identify / track), single or batch",
        description=(
            "Write-only ingest for a key with the `events:write` scope. The body is one "
            "event or `{\"batch\": [...]}` with up to 1,000 events and at most 1 MB. A "
            "batch is all-or-nothing: if any event is invalid nothing is stored and the "
            "422 problem lists every error by position (`batch.3.email`). 202 is sent "
            "only after the events are committed to the database. An event's "
            "`message_id` makes retries safe: a repeat within 24 hours is acknowledged "
            "(listed in `duplicates`) and not stored again. See docs/events.md."),
        request={JSON: schema.openapi_request_schema()},
        responses={202: RESPONSE_SCHEMA},
        examples=[OpenApiExample("track", request_only=True, value={
            "type": "track", "event": "Signed up", "properties": {"plan": "pro"},
            "external_id": "user-42", "message_id": "3f1c9b1e",
            "timestamp": "2026-01-31T12:00:00Z"})],
    )
    def post(self, request: Request):
        django_request = request._request
        if not is_media(django_request.META.get("CONTENT_TYPE", "")):
            raise exceptions.UnsupportedMediaType(
                django_request.META.get("CONTENT_TYPE", "") or "(none)",
                detail="Send the events as application/json (UTF-8).")
        check_length(django_request.META.get("CONTENT_LENGTH"))
        body = django_request.body
        if len(body) > schema.MAX_BODY_BYTES:
            raise PayloadTooLarge()
        try:
            payload = schema.parse(body)
            result = do_ingest_events(request.auth.account, payload.events,
                                      actor=request.auth, request=django_request,
                                      batched=payload.batched)
        except jsondepth.TooDeep as exc:
            raise TooDeep(str(exc)) from None
        except schema.PayloadError as exc:
            raise exceptions.ParseError(str(exc)) from None
        except schema.EventErrors as exc:
            raise invalid(exc.errors) from None
        except IngestConflict as exc:
            raise Conflict(str(exc)) from None
        return HttpResponse(
            _encode(_AcceptedResponse(result.received, result.stored,
                                      list(result.duplicates))),
            status=202, content_type=JSON)


def check_length(raw: str | None, limit: int = schema.MAX_BODY_BYTES,
                 error: type[PayloadTooLarge] = PayloadTooLarge) -> None:
    """A declared Content-Length over ``limit`` is refused before the body is read."""
    try:
        length = int(raw or 0)
    except ValueError:
        return  # the body-size middleware already answered malformed lengths
    if length > limit:
        raise error()
