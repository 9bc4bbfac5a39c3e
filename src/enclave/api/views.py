"""API views that belong to no domain app: health and the interactive docs page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from enclave.core import problems


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
    no inline script or style, so the site's strict CSP applies unchanged."""
    if request.method not in ("GET", "HEAD"):
        return problems.problem_response(
            request, "method-not-allowed", f"{request.method} is not allowed here; use GET.",
            headers={"Allow": "GET, HEAD"})
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
                  "country", "external_id", "consent", "created_at", "updated_at"):
        value = getattr(person, field)
        body[field] = value.isoformat() if hasattr(value, "isoformat") else (value or "")
    body["archived_at"] = person.archived_at.isoformat() if person.archived_at else None
    body["custom"] = dict(person.custom or {})
    body["tags"] = sorted(PersonTag.objects.filter(person=person)
                          .values_list("tag__name", flat=True))
    body["masked"] = []
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})
