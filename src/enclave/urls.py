from django.urls import include, path

from enclave.core import views as core_views
from enclave.identity import views as identity_views

urlpatterns = [
    path("", include("enclave.website.urls")),
    path("problems/<slug:slug>", core_views.problem_type, name="problem-type"),
    path("app/", identity_views.home, name="app-home"),
    path("app/setup/<str:token>", identity_views.setup_owner, name="setup-owner"),
    path("app/login/", identity_views.MemberLoginView.as_view(), name="login"),
    path("app/logout/", identity_views.MemberLogoutView.as_view(), name="logout"),
    path("api/", include("enclave.api.urls")),
]

handler400 = "enclave.core.views.bad_request"
handler403 = "enclave.core.views.permission_denied"
handler404 = "enclave.core.views.not_found"
handler500 = "enclave.core.views.server_error"
