"""Test-only URLs: the real ones plus views that log carelessly and fail with secrets."""

from __future__ import annotations

import json
import logging

import structlog
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from enclave.urls import urlpatterns as real_urlpatterns

log = structlog.get_logger("enclave.tests")


@csrf_exempt
def careless(request: HttpRequest) -> HttpResponse:
    """Logs the whole request the way a hurried developer might, then fails."""
    payload = json.loads(request.body or b"{}")
    log.info("incoming request", headers=dict(request.headers), payload=payload,
             query=request.GET.dict())
    logging.getLogger("enclave.tests").warning("payload was %s", payload)
    print(f"debug: {payload}")  # noqa: T201 — printed output must be redacted too
    raise RuntimeError(f"could not process {payload!r} with {request.headers!r}")


urlpatterns = [*real_urlpatterns, path("test/careless/", careless)]
