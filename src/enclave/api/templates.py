"""Email templates under /api/v1/templates: list, create, get, change, delete, preview.
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
