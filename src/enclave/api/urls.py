from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView

from enclave.api.views import HealthView

urlpatterns = [
    path("v1/health", HealthView.as_view(), name="api-health"),
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="api-openapi"),
]
