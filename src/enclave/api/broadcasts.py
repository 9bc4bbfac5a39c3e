"""Broadcasts under /api/v1/broadcasts: list, draft, get (with live progress), delete a
draft, queue (send now), schedule, pause, resume, cancel. Thin edges over ``messaging.access`` /
``messaging.actions`` / ``messaging.pipeline``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.messaging import access, actions, pipeline
from enclave.messaging.models import EmailTemplate, SenderDomain


def _when(value) -> str | None:
    return value.isoformat() if value else None


def broadcast_json(broadcast, sender_domain: str | None = None) -> dict:
    domain = sender_domain or SenderDomain.objects.values_list("domain", flat=True).get(
        pk=broadcast.sender_id)
    return {"id": broadcast.pk, "name": broadcast.name, "state": broadcast.state,
            "template": broadcast.template_id, "sender": broadcast.sender_id,
            "from_address": f"{broadcast.from_local}@{domain}",
            "from_name": broadcast.from_name, "topics": broadcast.topics,
            "segments": broadcast.segments, "recipients": broadcast.recipients,
            "send_at": _when(broadcast.send_at),
            "local_time": _when(actions.local_wall(broadcast)),
            "problem": broadcast.problem,
            "queued_at": _when(broadcast.queued_at),
            "finished_at": _when(broadcast.finished_at),
            "track_opens": broadcast.track_opens, "track_clicks": broadcast.track_clicks,
            "progress": pipeline.progress(broadcast)}


class BroadcastsView(ApiView):
    """The account's broadcasts: list, or draft one."""

    @extend_schema(operation_id="broadcasts_list", responses=s.BroadcastListSerializer,
                   summary="The account's broadcasts, newest first, with progress")
    def get(self, request):
        return Response({"results": [
            broadcast_json(b, b.sender.domain)
            for b in access.broadcasts_of(self.principal).select_related("sender")]})

    @extend_schema(operation_id="broadcasts_create", request=s.BroadcastWriteSerializer,
                   responses={201: s.BroadcastSerializer},
                   summary="Draft a broadcast (409 when the body names something the "
                           "account does not have)")
    def post(self, request):
        data = self.validated(s.BroadcastWriteSerializer)
        template = access.referenced(self.principal, EmailTemplate, data["template"],
                                     "template")
        sender = access.referenced(self.principal, SenderDomain, data["sender"], "sender")
        broadcast = actions.do_create_broadcast(
            self.principal.account, data["name"], template=template, sender=sender,
            from_local=data["from_local"], from_name=data.get("from_name", ""),
            topics=data["topics"], segments=data.get("segments", []),
            track_opens=data.get("track_opens", False),
            track_clicks=data.get("track_clicks", False),
            actor=self.principal, request=request._request)
        return Response(broadcast_json(broadcast), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/broadcasts/{broadcast.pk}"})


class BroadcastView(ApiView):
    """One broadcast: get it with its progress, or delete a draft."""

    @extend_schema(operation_id="broadcasts_get", responses=s.BroadcastSerializer,
                   summary="Get a broadcast and its live progress")
    def get(self, request, broadcast_id: int):
        return Response(broadcast_json(access.access_broadcast(self.principal,
                                                               broadcast_id)))

    @extend_schema(operation_id="broadcasts_delete", request=None,
                   responses={204: OpenApiResponse(description="Deleted")},
                   summary="Delete a draft (409 for a broadcast that was queued)")
    def delete(self, request, broadcast_id: int):
        broadcast = access.access_broadcast(self.principal, broadcast_id, for_write=True)
        actions.do_delete_broadcast(broadcast, actor=self.principal,
                                    request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BroadcastQueueView(ApiView):
    """Send a draft now: its recipients are snapshotted into the outbox."""

    @extend_schema(operation_id="broadcasts_queue", request=None,
                   responses=s.BroadcastSerializer,
                   summary="Send now (409 unless a draft whose sender domain is verified)")
    def post(self, request, broadcast_id: int):
        broadcast = access.access_broadcast(self.principal, broadcast_id, for_write=True)
        return Response(broadcast_json(actions.do_queue_broadcast(
            broadcast, actor=self.principal, request=request._request)))


class BroadcastCancelView(ApiView):
    """Stop a queued or paused broadcast (what is already sent stays sent); a scheduled
    one goes back to being a draft."""

    @extend_schema(operation_id="broadcasts_cancel", request=None,
                   responses=s.BroadcastSerializer,
                   summary="Cancel what is still queued, or unschedule (409 otherwise)")
    def post(self, request, broadcast_id: int):
        broadcast = access.access_broadcast(self.principal, broadcast_id, for_write=True)
        return Response(broadcast_json(actions.do_cancel_broadcast(
            broadcast, actor=self.principal, request=request._request)))


class BroadcastScheduleView(ApiView):
    """Send a draft at a time: its recipients are snapshotted then."""

    @extend_schema(operation_id="broadcasts_schedule", request=s.BroadcastScheduleSerializer,
                   responses=s.BroadcastSerializer,
                   summary="Schedule a draft (409 unless a draft whose sender domain is "
                           "verified)")
    def post(self, request, broadcast_id: int):
        data = self.validated(s.BroadcastScheduleSerializer)
        broadcast = access.access_broadcast(self.principal, broadcast_id, for_write=True)
        return Response(broadcast_json(actions.do_schedule_broadcast(
            broadcast, data["send_at"], local_time=data["local_time"], actor=self.principal,
            request=request._request)))


class BroadcastPauseView(ApiView):
    """Stop handing a queued broadcast's messages over until it is resumed."""

    @extend_schema(operation_id="broadcasts_pause", request=None,
                   responses=s.BroadcastSerializer,
                   summary="Pause a queued broadcast (409 otherwise)")
    def post(self, request, broadcast_id: int):
        broadcast = access.access_broadcast(self.principal, broadcast_id, for_write=True)
        return Response(broadcast_json(actions.do_pause_broadcast(
            broadcast, actor=self.principal, request=request._request)))


class BroadcastResumeView(ApiView):
    """Carry on sending a paused broadcast where it stopped."""

    @extend_schema(operation_id="broadcasts_resume", request=None,
                   responses=s.BroadcastSerializer,
                   summary="Resume a paused broadcast (409 otherwise)")
    def post(self, request, broadcast_id: int):
        broadcast = access.access_broadcast(self.principal, broadcast_id, for_write=True)
        return Response(broadcast_json(actions.do_resume_broadcast(
            broadcast, actor=self.principal, request=request._request)))
