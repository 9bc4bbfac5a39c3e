"""API views that belong to no domain app: health, the OpenAPI document and the
interactive docs page."""

from __future__ import annotations

import copy

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from enclave.access import endpoints
from enclave.access.principal import Principal
from enclave.api import serializers as s
from enclave.api.schema import person_write_bodies
from enclave.apikeys.auth import ApiKeyAuthentication
from enclave.audience import schema as audience_schema
from enclave.events import schema as events_schema


class HealthView(APIView):
    """Liveness: answers 200 when the process serves requests and the database is reachable."""

    authentication_classes: list = []  # public: no key needed, none looked at
    metadata_class = None

    @extend_schema(operation_id="health", auth=[],
                   responses=inline_serializer("Health", {"status": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response({"status": "ok"})


def docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI over /api/v1/openapi.json, from our own static files (sidecar): no CDN,
    no inline script or style, so the site's strict CSP applies unchanged. (Other methods
    get a 405 problem from the endpoint registry's middleware.)"""
    return render(request, "api/docs.html")


def bench_bare_person(request: HttpRequest, person_id: int) -> HttpResponse:
    """BENCHMARK BASELINE ONLY (routed when settings.ENCLAVE_API_BENCH_VIEW, never in a live
    environment): the JSON of GET /api/v1/people/{id} built the plainest way — the row and
    its tags, no authentication, no DRF, no visibility formatter."""
    from enclave.people.models import Person, PersonTag

    person = Person.objects.filter(pk=person_id).first()
    if person is None:
        raise Http404
    body = {"id": person.pk}
    for field in ("email", "first_name", "last_name", "phone", "address", "ip", "company",
                  "country", "time_zone", "external_id", "consent", "created_at",
                  "updated_at"):
        value = getattr(person, field)
        body[field] = value.isoformat() if hasattr(value, "isoformat") else (value or "")
    body["archived_at"] = person.archived_at.isoformat() if person.archived_at else None
    body["custom"] = dict(person.custom or {})
    body["tags"] = sorted(PersonTag.objects.filter(person=person)
                          .values_list("tag__name", flat=True))
    body["masked"] = []
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


class OpenApiView(SpectacularJSONAPIView):
    """The OpenAPI document, public. Sent with an API key that may list the account's
    fields (the registry's ``GET /api/v1/fields``: scope and permission), the person
    write bodies name that account's custom fields, each with its value type, and no
    others — the document then says exactly what the server accepts from that key, and
    a client generated from it is typed for the account. A bad key is its 401."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes: list = []
    schema = None  # the document does not describe itself (as drf-spectacular's own view)

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        principal = request.auth
        fields = endpoints.lookup("api-fields", "GET")
        if isinstance(principal, Principal) and principal.is_api_key and \
                principal.has_scope(fields.scope) and principal.can(fields.permission):
            response.data = _account_document(response.data, principal)
        return response


def _account_document(document: dict, principal: Principal) -> dict:
    from enclave.people import access, visibility

    document = copy.deepcopy(document)
    definitions = access.field_definitions(principal.account_id)
    writable = [d for d in definitions if visibility.field_level(
        principal.perms, f"custom.{d.key}", definitions) == visibility.VISIBLE]
    schemas = document["components"]["schemas"]
    for body in person_write_bodies(schemas):
        body["properties"]["custom"] = s.custom_values_schema(writable)
    # Ingest sets any of the account's fields (a write-only key writes blind:
    # docs/events.md), so an identify's fields name them all.
    schemas.update(events_schema.openapi_components(definitions))
    # Segment rules name the fields this key may use in full, each with its operators.
    schemas.update(audience_schema.openapi_components(definitions, principal.perms))
    return document
