"""Email templates under /api/v1/templates (list, create, get, change, delete, preview)
and sender domains under /api/v1/sender-domains (list, add, get, remove, check, rotate).
Thin edges over ``messaging.access`` / ``messaging.actions``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from enclave.api import serializers as s
from enclave.api.base import ApiView
from enclave.messaging import access, actions, rendering


def template_json(template) -> dict:
    return {"id": template.pk, "name": template.name, "kind": template.kind,
            "subject": template.subject, "source": template.source,
            "created_at": template.created_at.isoformat(),
            "updated_at": template.updated_at.isoformat()}


class TemplatesView(ApiView):
    """The account's email templates: list, or create one."""

    @extend_schema(operation_id="templates_list", responses=s.TemplateListSerializer,
                   summary="The account's email templates, by name")
    def get(self, request):
        return Response({"results": [template_json(t)
                                     for t in access.templates_of(self.principal)]})

    @extend_schema(operation_id="templates_create", request=s.TemplateWriteSerializer,
                   responses={201: s.TemplateSerializer}, summary="Create an email template")
    def post(self, request):
        data = self.validated(s.TemplateWriteSerializer)
        template = actions.do_create_template(
            self.principal.account, data["name"], data["kind"], data["subject"],
            data["source"], actor=self.principal, request=request._request)
        return Response(template_json(template), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/templates/{template.pk}"})


class TemplateView(ApiView):
    """One template: get, change, delete."""

    @extend_schema(operation_id="templates_get", responses=s.TemplateSerializer,
                   summary="Get an email template")
    def get(self, request, template_id: int):
        return Response(template_json(access.access_template(self.principal, template_id)))

    @extend_schema(operation_id="templates_update", request=s.TemplateChangeSerializer,
                   responses=s.TemplateSerializer, summary="Change an email template")
    def patch(self, request, template_id: int):
        template = access.access_template(self.principal, template_id, for_write=True)
        data = self.validated(s.TemplateChangeSerializer)
        template = actions.do_change_template(template, actor=self.principal,
                                              request=request._request, **data)
        return Response(template_json(template))

    @extend_schema(operation_id="templates_delete", request=None,
                   responses={204: OpenApiResponse(description="Deleted")},
                   summary="Delete an email template")
    def delete(self, request, template_id: int):
        template = access.access_template(self.principal, template_id, for_write=True)
        actions.do_delete_template(template, actor=self.principal, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TemplatePreviewView(ApiView):
    """Render a template for a sample person or one of the account's people."""

    @extend_schema(operation_id="templates_preview", request=s.TemplatePreviewBodySerializer,
                   responses=s.TemplatePreviewSerializer,
                   summary="Preview an email template (a person's fields as this key may "
                           "see them; links are placeholders)")
    def post(self, request, template_id: int):
        template = access.access_template(self.principal, template_id)
        data = self.validated(s.TemplatePreviewBodySerializer)
        try:
            out = access.preview(self.principal, template, data.get("person"))
        except rendering.TemplateError as exc:
            raise ValidationError({exc.field: exc.message}) from None
        return Response({"subject": out.subject, "html": out.html, "text": out.text})


def _when(value) -> str | None:
    return value.isoformat() if value else None


def sender_json(sender) -> dict:
    return {"id": sender.pk, "domain": sender.domain, "state": sender.state,
            "check_detail": sender.check_detail, "checked_at": _when(sender.checked_at),
            "verified_at": _when(sender.verified_at),
            "max_per_second": sender.max_per_second,
            "keys": [{"selector": k.selector, "state": k.state,
                      "created_at": k.created_at.isoformat()}
                     for k in access.live_keys(sender)],
            "records": [{"type": r.type, "name": r.name, "value": r.value,
                         "purpose": r.purpose, "required": r.required}
                        for r in access.records_to_publish(sender)]}


class SenderDomainsView(ApiView):
    """The account's sender domains: list, or add one (with its first DKIM key)."""

    @extend_schema(operation_id="sender_domains_list",
                   responses=s.SenderDomainListSerializer,
                   summary="The account's sender domains and the DNS records to publish")
    def get(self, request):
        return Response({"results": [sender_json(d)
                                     for d in access.sender_domains_of(self.principal)]})

    @extend_schema(operation_id="sender_domains_add", request=s.SenderDomainWriteSerializer,
                   responses={201: s.SenderDomainSerializer},
                   summary="Add a sender domain (a DKIM key is made for it)")
    def post(self, request):
        data = self.validated(s.SenderDomainWriteSerializer)
        sender = actions.do_add_sender_domain(self.principal.account, data["domain"],
                                              actor=self.principal, request=request._request)
        return Response(sender_json(sender), status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/sender-domains/{sender.pk}"})


class SenderDomainView(ApiView):
    """One sender domain: get, or remove it (its keys are destroyed)."""

    @extend_schema(operation_id="sender_domains_get", responses=s.SenderDomainSerializer,
                   summary="Get a sender domain")
    def get(self, request, domain_id: int):
        return Response(sender_json(access.access_sender_domain(self.principal, domain_id)))

    @extend_schema(operation_id="sender_domains_remove", request=None,
                   responses={204: OpenApiResponse(description="Removed")},
                   summary="Remove a sender domain")
    def delete(self, request, domain_id: int):
        sender = access.access_sender_domain(self.principal, domain_id, for_write=True)
        actions.do_remove_sender_domain(sender, actor=self.principal,
                                        request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SenderDomainCheckView(ApiView):
    """Ask DNS now (limited per account: 429 past ``sender_domain.check``)."""

    @extend_schema(operation_id="sender_domains_check", request=None,
                   responses=s.SenderDomainSerializer,
                   summary="Check the domain's DNS records now")
    def post(self, request, domain_id: int):
        sender = access.access_sender_domain(self.principal, domain_id, for_write=True)
        return Response(sender_json(actions.do_check_sender_domain(
            sender, actor=self.principal, request=request._request)))


class SenderDomainRotateView(ApiView):
    """Make a new DKIM key (409 while one already waits for its record)."""

    @extend_schema(operation_id="sender_domains_rotate", request=None,
                   responses=s.SenderDomainSerializer,
                   summary="Rotate the domain's DKIM key")
    def post(self, request, domain_id: int):
        sender = access.access_sender_domain(self.principal, domain_id, for_write=True)
        actions.do_rotate_dkim_key(sender, actor=self.principal, request=request._request)
        return Response(sender_json(sender))


class SenderDomainThrottleView(ApiView):
    """Set or lift the domain's messages-a-second limit."""

    @extend_schema(operation_id="sender_domains_throttle",
                   request=s.SenderDomainThrottleSerializer,
                   responses=s.SenderDomainSerializer,
                   summary="Throttle the domain (null lifts it)")
    def post(self, request, domain_id: int):
        data = self.validated(s.SenderDomainThrottleSerializer)
        sender = access.access_sender_domain(self.principal, domain_id, for_write=True)
        return Response(sender_json(actions.do_throttle_sender_domain(
            sender, data["max_per_second"], actor=self.principal,
            request=request._request)))
