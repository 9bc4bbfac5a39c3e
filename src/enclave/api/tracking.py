"""``/api/ingest/v1/<call>``: the tracking spec's HTTP API (Segment / RudderStack), so
their SDKs send to Enclave by changing the host and the key (docs/sdks.md).

The calls ``batch``, ``identify``, ``track``, ``page``, ``screen``, ``group`` and
``alias``; the key as the Basic user name (as the SDKs send it) or a Bearer token, with
the ``events:write`` scope; gzip bodies; 200 ``{"success": true}`` only after the
transaction committed. Errors are problem+json with the members the SDKs read (``code``
and ``message``): they retry on 5xx and 429 only, so a refused batch is never resent.
The body is read raw (``events.spec``) and stored by ``events.actions.do_ingest_spec``.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request

from enclave.api.base import ApiView
from enclave.api.errors import exception_handler, invalid
from enclave.api.events import PayloadTooLarge, check_length, is_media
from enclave.api.parsers import TooDeep
from enclave.apikeys.auth import WriteKeyAuthentication
from enclave.apikeys.throttle import IngestIpThrottle, IngestKeyThrottle
from enclave.core import jsondepth
from enclave.events import schema, spec
from enclave.events.actions import IngestConflict, do_ingest_spec

_OK = b'{"success":true}'
# What browsers may send without a preflight (the browser library's beacons) and what
# the server-side SDKs send.
_MEDIA = ("application/json", "text/plain")


class Busy(exceptions.APIException):
    """503 ``busy`` with Retry-After: the SDKs retry 5xx and 429 only, so a batch that
    met a concurrent conflict must not be a 409 (it would be dropped, never resent)."""

    status_code = 503
    default_detail = "Concurrent writes got in the way; nothing was stored. Retry."
    problem_slug = "busy"
    wait = 1


class SpecTooLarge(PayloadTooLarge):
    default_detail = (f"A request may carry at most {spec.MAX_BATCH_BYTES} bytes and a "
                      f"message at most {spec.MAX_MESSAGE_BYTES} bytes.")


def _spec_exception_handler(exc, context):
    """Enclave's problem+json, plus ``code`` and ``message`` (the SDKs read them: a body
    without them makes analytics-python retry a 4xx as if the network had failed)."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    body = json.loads(response.content)
    body["code"] = body["type"].rsplit("/", 1)[-1]
    body["message"] = body["detail"]
    response.content = json.dumps(body).encode()
    if response.has_header("WWW-Authenticate"):
        response["WWW-Authenticate"] = 'Basic realm="enclave"'
    return response


class _CallSchema(AutoSchema):
    """Each route's own request body and operation id (one view class serves every call,
    the call given by ``as_view(call=...)``)."""

    def get_request_serializer(self):
        return {"application/json": spec.openapi_request_schema(self.view.call)}

    def get_operation_id(self):
        return f"ingest_{self.view.call}"


class SpecIngestView(ApiView):
    """One call of the tracking spec (``call``: ``batch`` or the call's type)."""

    authentication_classes = [WriteKeyAuthentication]
    throttle_classes = [IngestIpThrottle, IngestKeyThrottle]
    schema = _CallSchema()
    call = "batch"

    def get_exception_handler(self):
        return _spec_exception_handler

    @extend_schema(
        tags=["events"],
        summary="Tracking spec (Segment / RudderStack HTTP API)",
        description=(
            "The tracking spec's HTTP API for its SDKs: point an SDK's host at "
            "`https://<enclave>/api/ingest` and use an `events:write` key as its write key "
            "(sent as the Basic user name). `batch` takes `{\"batch\": [...]}`; the other "
            "calls one message. Bodies may be gzip (`Content-Encoding: gzip`), at most "
            "500 KB decompressed, 32 KB per message. A batch is all or nothing; 200 is sent "
            "after it is committed; `messageId` deduplicates for 24 hours. Members the "
            "spec defines beyond these (`integrations`, `channel`, `writeKey`...) are "
            "ignored. See docs/sdks.md."),
        responses={200: {"type": "object", "properties": {"success": {"const": True}},
                         "required": ["success"]}},
        examples=[OpenApiExample("track", request_only=True, value={
            "userId": "user-42", "event": "Signed up", "properties": {"plan": "pro"},
            "messageId": "3f1c9b1e", "timestamp": "2026-01-31T12:00:00Z"})],
    )
    def post(self, request: Request):
        django_request = request._request
        content_type = django_request.META.get("CONTENT_TYPE", "")
        if not is_media(content_type, _MEDIA):
            raise exceptions.UnsupportedMediaType(
                content_type or "(none)", detail="Send the calls as application/json "
                                                 "(UTF-8), gzip-encoded or not.")
        check_length(django_request.META.get("CONTENT_LENGTH"), spec.MAX_BATCH_BYTES,
                     SpecTooLarge)
        try:
            body = spec.inflate(django_request.body,
                                django_request.META.get("HTTP_CONTENT_ENCODING", ""))
            parsed = spec.read(body, self.call)
            do_ingest_spec(request.auth.account, parsed, actor=request.auth,
                           request=django_request)
        except spec.TooLarge as exc:
            raise SpecTooLarge(str(exc)) from None
        except jsondepth.TooDeep as exc:
            raise TooDeep(str(exc)) from None
        except spec.BodyError as exc:
            raise exceptions.ParseError(str(exc)) from None
        except schema.EventErrors as exc:
            raise invalid(exc.errors) from None
        except IngestConflict as exc:
            raise Busy(str(exc)) from None
        return HttpResponse(_OK, status=200, content_type="application/json")

