"""``/api/ingest/v1/<call>``: the tracking spec's HTTP API (Segment / RudderStack), so
their SDKs send to Enclave by changing the host and the key (docs/sdks.md).

The calls ``batch``, ``identify``, ``track``, ``page``, ``screen``, ``group`` and
``alias``; the key as the Basic user name (as the SDKs send it) or a Bearer token, with
the ``events:write`` scope; gzip bodies; 200 ``{"success": true}`` only after the
transaction committed. Errors are problem+json with the members the SDKs read (``code``
and ``message``): they retry on 5xx and 429 only, so a refused batch is never resent.
The body is read raw (``events.spec``) and stored by ``events.actions.do_ingest_spec``.

Websites send with a *browser key* (docs/sdks.md, "Website tracking"): the key in the
body's ``writeKey`` (no Authorization header, so a ``text/plain`` POST needs no CORS
preflight), accepted only with an ``Origin`` the key lists — answered with that origin in
``Access-Control-Allow-Origin`` — and limited per visitor's anonymous id
(``ingest.browser_anonymous``) on top of the per-address limit. A server key is refused
from any page (a request with an ``Origin``), so a key pasted into a site stops working
at once instead of leaking quietly.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request

from enclave.access.principal import Principal
from enclave.api.base import ApiView
from enclave.api.errors import exception_handler, invalid
from enclave.api.events import PayloadTooLarge, check_length, is_media
from enclave.api.parsers import TooDeep
from enclave.apikeys import errors as key_errors
from enclave.apikeys import throttle
from enclave.apikeys.actions import origin_allowed
from enclave.apikeys.auth import WriteKeyAuthentication, authenticate_request
from enclave.apikeys.throttle import (
    IngestIpThrottle,
    IngestKeyThrottle,
    RateLimited,
    ip_exempt,
)
from enclave.core import audit, jsondepth
from enclave.core.ratelimit import hit
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


class OriginNotAllowed(exceptions.PermissionDenied):
    problem_slug = "origin-not-allowed"


# A browser sends one visitor's calls, a few at a time: more anonymous ids or more calls in
# one request is a client that is not a visitor's browser.
_MAX_BROWSER_VISITORS = 10
_MAX_BROWSER_MESSAGES = 20


def _inflated(django_request) -> bytes:
    """The request body with its gzip undone (once per request), or the call's error."""
    body = getattr(django_request, "_enclave_spec_body", None)
    if body is None:
        check_length(django_request.META.get("CONTENT_LENGTH"), spec.MAX_BATCH_BYTES,
                     SpecTooLarge)
        try:
            body = spec.inflate(django_request.body,
                                django_request.META.get("HTTP_CONTENT_ENCODING", ""))
        except spec.TooLarge as exc:
            raise SpecTooLarge(str(exc)) from None
        except spec.BodyError as exc:
            raise exceptions.ParseError(str(exc)) from None
        django_request._enclave_spec_body = body
    return body


class SpecKeyAuthentication(WriteKeyAuthentication):
    """The key from the Authorization header (Basic user name or Bearer), else — browser
    keys only — from the body's ``writeKey`` (browser libraries). A server key is never
    taken from a body: bodies are not where secrets go (a plain-HTTP body is searched
    for keys all the same: ``core.actions.credentials_in_request``)."""

    def authenticate(self, request):
        django_request = getattr(request, "_request", request)
        if django_request.META.get("HTTP_AUTHORIZATION", "").strip():
            return super().authenticate(request)
        # An address over its limit of refused keys costs no decompression either.
        throttle.refuse_if_failing(audit.client_ip(django_request))
        token = spec.write_key(_inflated(django_request))
        if token is None:
            return None
        principal = authenticate_request(django_request, token=token)
        if principal.browser is None:
            raise key_errors.KeyMalformed(
                "Send a server key as the Basic user name (or Bearer token); only browser "
                "keys are read from the body's writeKey.")
        return principal.member, principal


def _origin(django_request) -> str:
    return django_request.META.get("HTTP_ORIGIN", "")


def _check_origin(principal, django_request) -> None:
    origin = _origin(django_request)
    if principal.browser is None:
        if origin:
            raise OriginNotAllowed("This is a server key: it never works from a web page. "
                                   "Use a browser key there, and revoke this one if it "
                                   "was published.")
        return
    if not origin:
        raise OriginNotAllowed("A browser key works only from a web page on one of its "
                               "origins (the request has no Origin header).")
    if not origin_allowed(origin, principal.browser.origins):
        raise OriginNotAllowed("This browser key does not work from this origin; add the "
                               "site's origin to the key.")


def _browser_limits(principal, parsed: spec.Parsed, django_request) -> None:
    """A browser key's limits: ``ingest.browser_ip`` per client address and
    ``ingest.browser_anonymous`` per visitor's anonymous id (calls without one count under
    the key's empty id)."""
    visitors = [str(m.anonymous_id or "") for m, _ in parsed.messages]
    distinct = len(set(visitors))
    if distinct > _MAX_BROWSER_VISITORS:
        raise exceptions.PermissionDenied(
            f"A browser sends calls of one visitor; this request names {distinct}.")
    if len(visitors) > _MAX_BROWSER_MESSAGES:
        raise exceptions.PermissionDenied(
            f"A browser key sends at most {_MAX_BROWSER_MESSAGES} calls per request.")
    ip = audit.client_ip(django_request)
    counters = [("ingest.browser_ip", f"{principal.api_key_public_id}:ip:{ip}")] if ip \
        and not ip_exempt(ip) else []
    # Each call counts (a batch is not a way around the per-visitor limit).
    counters += [("ingest.browser_anonymous", f"{principal.api_key_public_id}:{v}")
                 for v in sorted(visitors)]
    for name, ident in counters:
        decision = hit(name, ident)
        if not decision.allowed:
            raise RateLimited(wait=decision.retry_after)


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

    authentication_classes = [SpecKeyAuthentication]
    throttle_classes = [IngestIpThrottle, IngestKeyThrottle]
    schema = _CallSchema()
    call = "batch"

    def get_exception_handler(self):
        return _spec_exception_handler

    def check_permissions(self, request):
        # The origin first: a page that may not use the key spends none of its limits.
        if isinstance(request.auth, Principal):
            _check_origin(request.auth, request._request)
        super().check_permissions(request)  # rate limits, scope, permission

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # A browser key's page may read the answer (errors included) from its origins.
        principal = getattr(request._request, "principal", None)
        origin = _origin(request._request)
        if principal is not None and principal.browser is not None and \
                origin_allowed(origin, principal.browser.origins):
            response["Access-Control-Allow-Origin"] = origin.strip()
            response["Access-Control-Expose-Headers"] = "Retry-After"
        response["Vary"] = "Origin"
        return response

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
            "spec defines beyond these (`integrations`, `channel`...) are ignored. A "
            "website's browser key is sent as the body's `writeKey` instead, from a page "
            "on one of its origins, and may send `page`, `track` and `identify` only. "
            "See docs/sdks.md."),
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
        body = _inflated(django_request)
        try:
            parsed = spec.read(body, self.call)
            if request.auth.browser is not None:
                _browser_limits(request.auth, parsed, django_request)
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

