"""API-key pages under /app/api-keys/."""

from django.urls import path

from enclave.apikeys import views

urlpatterns = [
    path("", views.key_list, name="api-keys-list"),
    path("new/", views.key_create, name="api-keys-create"),
    path("policy/", views.key_policy, name="api-keys-policy"),
    path("<str:public_id>/roll/", views.key_roll, name="api-keys-roll"),
    path("<str:public_id>/revoke/", views.key_revoke, name="api-keys-revoke"),
]
