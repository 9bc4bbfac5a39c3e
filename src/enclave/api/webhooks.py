"""Outgoing webhook endpoints and their delivery log under /api/v1/webhooks. Thin edges
over ``webhooks.access`` / ``webhooks.actions``.

An endpoint's URL is shown only as its host (the path or query may be the receiver's
credential, as a chat tool's incoming-webhook URL is) and its signing secret only in the
answer that made it (create, rotate). The delivery log says what happened to each
delivery — never its payload, which shows people's data at the endpoint's ceiling."""

from __future__ import annotations

from urllib.parse import urlsplit

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from enclave.api import render
from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.webhooks import access, actions


def _when(value) -> str | None:
    return value.isoformat() if value else None


def endpoint_json(endpoint, secret: str | None = None) -> dict:
    out = {"id": endpoint.pk, "host": urlsplit(endpoint.url).hostname or "",
           "description": endpoint.description, "event_types": endpoint.event_types,
           "role_ceiling": endpoint.role_ceiling, "state": endpoint.state,
           "disabled_reason": endpoint.disabled_reason,
           "secret_rotation_overlap_until": _when(endpoint.previous_until),
           "created_at": _when(endpoint.created_at), "updated_at": _when(endpoint.updated_at)}
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_json(delivery) -> dict:
    return {"id": delivery.pk, "event_type": delivery.event_type,
            "webhook_id": delivery.message_id, "state": delivery.state,
            "attempts": delivery.attempts, "created_at": _when(delivery.created_at),
            "last_attempt_at": _when(delivery.last_attempt_at),
            "next_attempt_at": _when(delivery.next_attempt_at),
            "last_status": delivery.last_status, "last_detail": delivery.last_detail}


class WebhooksView(ApiView):
    """The account's webhook endpoints: list, or create one."""

    @extend_schema(operation_id="webhooks_list", responses=s.WebhookListSerializer,
                   summary="The account's webhook endpoints")
    def get(self, request):
        return Response({"results": [endpoint_json(e)
                                     for e in access.endpoints_of(self.principal)]})

    @extend_schema(operation_id="webhooks_create", request=s.WebhookWriteSerializer,
                   responses={201: s.WebhookCreatedSerializer},
                   summary="Create a webhook endpoint (its signing secret is shown once)")
    def post(self, request):
        data = self.validated(s.WebhookWriteSerializer)
        endpoint, secret = actions.do_create_webhook_endpoint(
            self.principal.account, url=data["url"], event_types=data["event_types"],
            role_ceiling=data.get("role_ceiling"), description=data.get("description", ""),
            actor=self.principal, request=request._request)
        return Response(endpoint_json(endpoint, secret), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/webhooks/{endpoint.pk}"})


class WebhookView(ApiView):
    """One endpoint: get, change (``enabled`` re-enables or disables it), or delete it."""

    @extend_schema(operation_id="webhooks_get", responses=s.WebhookSerializer,
                   summary="Get a webhook endpoint")
    def get(self, request, webhook_id: int):
        return Response(endpoint_json(access.access_endpoint(self.principal, webhook_id)))

    @extend_schema(operation_id="webhooks_update", request=s.WebhookChangeSerializer,
                   responses=s.WebhookSerializer, summary="Change a webhook endpoint")
    def patch(self, request, webhook_id: int):
        endpoint = access.access_endpoint(self.principal, webhook_id, for_write=True)
        data = self.validated(s.WebhookChangeSerializer)
        endpoint = actions.do_change_webhook_endpoint(endpoint, actor=self.principal,
                                                      request=request._request, **data)
        return Response(endpoint_json(endpoint))

    @extend_schema(operation_id="webhooks_delete", request=None,
                   responses={204: OpenApiResponse(description="Deleted")},
                   summary="Delete a webhook endpoint and its delivery log")
    def delete(self, request, webhook_id: int):
        endpoint = access.access_endpoint(self.principal, webhook_id, for_write=True)
        actions.do_delete_webhook_endpoint(endpoint, actor=self.principal,
                                           request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateView(ApiView):
    """A new signing secret; the old one keeps signing for a day."""

    @extend_schema(operation_id="webhooks_rotate_secret", request=None,
                   responses=s.WebhookCreatedSerializer,
                   summary="Rotate a webhook endpoint's signing secret (shown once)")
    def post(self, request, webhook_id: int):
        endpoint = access.access_endpoint(self.principal, webhook_id, for_write=True)
        endpoint, secret = actions.do_rotate_webhook_secret(endpoint, actor=self.principal,
                                                            request=request._request)
        return Response(endpoint_json(endpoint, secret))


_PAGE = [OpenApiParameter("limit", int, description="Page size, 1–200 (default 50)."),
         OpenApiParameter("cursor", str, description="next_cursor of the previous page.")]
PAGE_QUERY = frozenset({"limit", "cursor"})


class WebhookDeliveriesView(ApiView):
    """An endpoint's delivery log, newest first (cursor pages)."""

    query_params = {"GET": PAGE_QUERY}

    @extend_schema(operation_id="webhooks_deliveries", parameters=_PAGE,
                   responses=s.WebhookDeliveryPageSerializer,
                   summary="A webhook endpoint's deliveries, newest first")
    def get(self, request, webhook_id: int):
        endpoint = access.access_endpoint(self.principal, webhook_id)
        limit = render.page_limit(request.query_params.get("limit"))
        rows = access.deliveries_of(self.principal, endpoint)
        if request.query_params.get("cursor"):
            rows = rows.filter(pk__lt=render.decode_cursor(request.query_params["cursor"]))
        page = list(rows[:limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response({"results": [delivery_json(d) for d in page],
                         "next_cursor": render.encode_cursor(page[-1].pk) if more else None})


class WebhookReplayView(ApiView):
    """Send a delivery again (same webhook-id, new timestamp and signature)."""

    @extend_schema(operation_id="webhooks_replay", request=None,
                   responses=s.WebhookDeliverySerializer, summary="Replay a delivery")
    def post(self, request, webhook_id: int, delivery_id: int):
        endpoint = access.access_endpoint(self.principal, webhook_id, for_write=True)
        delivery = access.access_delivery(self.principal, endpoint, delivery_id,
                                          for_write=True)
        return Response(delivery_json(actions.do_replay_webhook_delivery(
            delivery, actor=self.principal, request=request._request)))
