"""Transactional messages under /api/v1/messages: send a template to one person or
address (idempotent on the ``Idempotency-Key`` header), and read a message's state.
Thin edges over ``messaging.actions.do_send_message``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from enclave.access.permissions import Permission
from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.messaging import access, actions
from enclave.messaging.models import EmailTemplate, SenderDomain, TransactionalMessage


class IdempotencyKeyMissing(exceptions.APIException):
    """400 ``idempotency-key-missing``: a send without the header could not be retried
    safely, so it is not taken."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = ("Send an Idempotency-Key header (1 to 255 printable ASCII "
                      "characters, new for each message): a retry with the same key never "
                      "sends twice.")
    problem_slug = "idempotency-key-missing"


def message_json(message: TransactionalMessage, principal) -> dict:
    # Which person an address belongs to is people data: told only to a key that may
    # read people (else sending by email would be a lookup of who is in the account).
    person = message.person_id if principal.can(Permission.PEOPLE_READ) else None
    return {"id": str(message.row_id), "state": message.state,
            "template": message.template_id, "sender": message.sender_id,
            "person": person, "attempts": message.attempts,
            "detail": message.detail, "created_at": message.created_at.isoformat(),
            "sent_at": message.sent_at.isoformat() if message.sent_at else None}


class MessagesView(ApiView):
    """Send one transactional message."""

    @extend_schema(
        operation_id="messages_send", request=s.MessageWriteSerializer,
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, required=True,
            description="New for each message; a retry with the same key and body gets "
                        "the first message back (Idempotent-Replayed: true), the same key "
                        "with another body 422.")],
        responses={202: s.MessageSerializer,
                   400: OpenApiResponse(description="No Idempotency-Key header")},
        summary="Queue a template to one person or address (409 for a template, sender "
                "domain or person the account does not have, or an unverified domain)")
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            raise IdempotencyKeyMissing()
        data = self.validated(s.MessageWriteSerializer)
        template = access.referenced(self.principal, EmailTemplate, data["template"],
                                     "template")
        sender = access.referenced(self.principal, SenderDomain, data["sender"], "sender")
        message, queued = actions.do_send_message(
            self.principal.account, template=template, sender=sender,
            from_local=data["from_local"], from_name=data.get("from_name", ""),
            person_id=data["to"].get("person"), email=data["to"].get("email"),
            data=data.get("data"), idempotency_key=key, actor=self.principal,
            request=request._request)
        headers = {"Location": f"/api/v1/messages/{message.row_id}"}
        if not queued:
            headers["Idempotent-Replayed"] = "true"
        return Response(message_json(message, self.principal),
                        status=status.HTTP_202_ACCEPTED,
                        headers=headers)


class MessageView(ApiView):
    """One transactional message's state."""

    @extend_schema(operation_id="messages_get", responses=s.MessageSerializer,
                   summary="A transactional message's state (404 for another account's)")
    def get(self, request, message_id):
        return Response(message_json(access.access_message(self.principal, message_id),
                                     self.principal))
