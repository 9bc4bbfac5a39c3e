"""Account-level resources: custom fields, members (read), the audit log (read) and the
account itself. Thin edges over ``people.access`` / ``accounts`` functions."""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from enclave.accounts import access as account_access
from enclave.accounts.actions import role_label
from enclave.accounts.models import Membership
from enclave.api import render
from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.api.errors import InvalidQuery
from enclave.core.models import AuditEventType
from enclave.people import access, actions, visibility


def _field_json(definition, perms, definitions) -> dict:
    return {"key": definition.key, "label": definition.label, "type": definition.type,
            "options": list(definition.options or []), "pd_class": definition.pd_class,
            "encrypt_at_rest": definition.encrypt_at_rest,
            "visibility": visibility.field_level(perms, f"custom.{definition.key}",
                                                 definitions)}


class FieldsView(ApiView):
    """Custom fields: list, or define one."""

    @extend_schema(operation_id="fields_list", responses=s.FieldListSerializer,
                   summary="The account's custom fields")
    def get(self, request):
        definitions = access.field_definitions(self.principal.account_id)
        return Response({"results": [_field_json(d, self.principal.perms, definitions)
                                     for d in definitions]})

    @extend_schema(operation_id="fields_define", request=s.FieldDefinitionWriteSerializer,
                   responses={201: s.FieldDefinitionSerializer},
                   summary="Define a custom field")
    def post(self, request):
        serializer = s.FieldDefinitionWriteSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        definition = actions.do_define_field(
            self.principal.account, data["key"], data.get("label", ""), data["type"],
            options=data.get("options", ()), pd_class=data["pd_class"],
            encrypt_at_rest=data["encrypt_at_rest"], actor=self.principal,
            request=request._request)
        definitions = access.field_definitions(self.principal.account_id)
        return Response(_field_json(definition, self.principal.perms, definitions),
                        status=status.HTTP_201_CREATED)


def _member_json(membership) -> dict:
    return {"id": membership.pk, "email": membership.member.email,
            "role": role_label(membership), "joined_at": membership.created_at.isoformat()}


class MembersView(ApiView):
    """The account's members (read only)."""

    @extend_schema(operation_id="members_list", responses=s.MemberListSerializer,
                   summary="The account's members and their roles")
    def get(self, request):
        rows = (Membership.objects.select_related("member", "custom_role")
                .filter(account_id=self.principal.account_id).order_by("created_at", "pk"))
        return Response({"results": [_member_json(m) for m in rows]})


class MemberView(ApiView):
    """One membership (read only)."""

    @extend_schema(operation_id="members_get", responses=s.MemberSerializer,
                   summary="One membership")
    def get(self, request, membership_id: int):
        return Response(_member_json(account_access.access_membership(self.principal,
                                                                     membership_id)))


_DAY = re.compile(r"(?!0000)(?!9999)[0-9]{4}-[0-9]{2}-[0-9]{2}")
AUDIT_FILTERS = frozenset(account_access.AUDIT_FILTERS) - {"before"}
_AUDIT_PARAMETERS = [
    OpenApiParameter("event", str, enum=sorted(t.name.lower() for t in AuditEventType)),
    OpenApiParameter("actor", str, description="Member email."),
    OpenApiParameter("target_type", str),
    OpenApiParameter("target_id", str),
    OpenApiParameter("since", str, description="YYYY-MM-DD (inclusive)."),
    OpenApiParameter("until", str, description="YYYY-MM-DD (inclusive)."),
    OpenApiParameter("limit", int, description="Page size, 1–200 (default 50)."),
    OpenApiParameter("cursor", str, description="next_cursor of the previous page."),
]


def _event_json(event, labels: dict[str, str]) -> dict:
    try:
        kind = AuditEventType(event.event_type)
        name, description = kind.name.lower(), kind.label
    except ValueError:
        name = description = str(event.event_type)
    label = labels.get(event.target_id) if event.target_type == "person" else None
    return {"id": event.pk, "at": event.created_at.isoformat(), "event": name,
            "description": description, "actor": event.actor.email if event.actor else None,
            "target_type": event.target_type, "target_id": event.target_id,
            "target_label": label or None, "ip": event.ip, "trace_id": event.trace_id,
            "scrubbed": event.scrubbed, "extra": {} if event.scrubbed else event.extra_data}


class AuditView(ApiView):
    """The account's audit log (read only), newest first, cursor pages."""

    query_params = {"GET": AUDIT_FILTERS | {"limit", "cursor"}}

    @extend_schema(operation_id="audit_list", parameters=_AUDIT_PARAMETERS,
                   responses=s.AuditPageSerializer,
                   summary="The account's audit log, newest first")
    def get(self, request):
        if request.query_params.get("event") == "":  # the schema's enum has no ""
            raise InvalidQuery("event must be an event type.")
        params = {k: v for k, v in request.query_params.items()
                  if k in AUDIT_FILTERS and v != ""}
        limit = render.page_limit(request.query_params.get("limit"))
        for name in ("since", "until"):
            if name in params and not _DAY.fullmatch(params[name]):
                raise InvalidQuery(f"{name} must be a date as YYYY-MM-DD (years 1–9998).")
        if request.query_params.get("cursor"):  # empty: the first page, as the schema says
            params["before"] = str(render.decode_cursor(request.query_params["cursor"]))
        try:
            events = list(account_access.audit_rows(self.principal, params)[:limit + 1])
        except account_access.BadFilter as exc:
            raise InvalidQuery(str(exc)) from None
        more = len(events) > limit
        events = events[:limit]
        # Person targets are labelled by the visibility formatter (email as the key sees it).
        labels = account_access.person_labels(self.principal, events)
        return Response({
            "results": [_event_json(e, labels) for e in events],
            "next_cursor": render.encode_cursor(events[-1].pk) if more else None,
        })


class AccountView(ApiView):
    """The key's account and the permissions the key holds."""

    @extend_schema(operation_id="account_get", responses=s.AccountSerializer,
                   summary="The key's account, and the permissions the key holds")
    def get(self, request):
        account = self.principal.account
        return Response({"id": account.pk, "name": account.name,
                         "created_at": account.created_at.isoformat(),
                         "require_mfa": account.require_mfa,
                         "idle_timeout_minutes": account.idle_timeout_minutes,
                         "permissions": sorted(request.auth.perms)})
