"""Test-only URLs: the real ones plus an API view that fails, for the 500 problem."""

from __future__ import annotations

from django.urls import path
from rest_framework.views import APIView

from enclave.urls import handler500  # noqa: F401  (the real handler answers the 500)
from enclave.urls import urlpatterns as real_urlpatterns


class Boom(APIView):
    authentication_classes: list = []

    def get(self, request):
        raise RuntimeError("boom: an unexpected failure inside an API view")


urlpatterns = [*real_urlpatterns, path("api/v1/test-boom", Boom.as_view())]
