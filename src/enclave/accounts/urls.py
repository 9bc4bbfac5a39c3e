"""Team, roles and audit-log pages under /app/. Every route has an entry in
``enclave.people.endpoints.ENDPOINTS``."""

from django.urls import path

from enclave.accounts import views

urlpatterns = [
    path("team/", views.team, name="team"),
    path("team/roles/", views.team_roles, name="team-roles"),
    path("team/<int:membership_id>/role/", views.team_change_role, name="team-change-role"),
    path("team/<int:membership_id>/remove/", views.team_remove, name="team-remove"),
    path("team/<int:membership_id>/transfer/", views.team_transfer, name="team-transfer"),
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
]
