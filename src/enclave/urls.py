from django.urls import include, path

from enclave.core import views as core_views
from enclave.events import tracker
from enclave.messaging import tracking
from enclave.messaging.webhooks import esp_inbound, esp_webhook
from enclave.server import health

urlpatterns = [
    path("", include("enclave.website.urls")),
    path("problems/<slug:slug>", core_views.problem_type, name="problem-type"),
    # Probes of the edge, Kubernetes and the fault drill (enclave.server.health).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("enclave.audience.urls")),
    path("app/", include("enclave.identity.urls")),
    path("app/", include("enclave.accounts.urls")),
    path("app/people/", include("enclave.people.urls")),
    path("app/", include("enclave.audience.app_urls")),
    path("app/", include("enclave.messaging.app_urls")),
    path("app/api-keys/", include("enclave.apikeys.urls")),
    path("", include("enclave.billing.urls")),
    path("api/", include("enclave.api.urls")),
    # Open and click tracking of broadcasts that ask for it (enclave.messaging.tracking).
    path("t/o/<str:token>", tracking.open_pixel, name="track-open"),
    path("t/c/<str:token>", tracking.click, name="track-click"),
    # The website tracking library (enclave.events.tracker, docs/sdks.md).
    path(tracker.PATH.lstrip("/"), tracker.library, name="tracking-library"),
    # An email provider's delivery webhooks (enclave.messaging.webhooks).
    path("webhooks/esp/<slug:esp>/", esp_webhook, name="esp-webhook"),
    path("webhooks/esp/<slug:esp>/inbound/", esp_inbound, name="esp-inbound"),
]

handler400 = "enclave.core.views.bad_request"
handler403 = "enclave.core.views.permission_denied"
handler404 = "enclave.core.views.not_found"
handler500 = "enclave.core.views.server_error"
