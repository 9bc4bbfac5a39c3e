"""Account pages under /app/. What each route needs is its entry in
``access.endpoints``."""

from django.urls import path

from enclave.accounts.views import audit, onboarding, team, workspace

urlpatterns = [
    path("", workspace.home, name="app-home"),
    path("setup/<str:token>", onboarding.setup_owner, name="setup-owner"),
    path("signup/<str:token>", onboarding.signup_complete, name="signup-complete"),
    path("invite/<str:token>", onboarding.accept_invitation, name="accept-invitation"),
    path("account/switch/", workspace.switch_account, name="account-switch"),
    path("account/invite/", workspace.invite, name="invite"),
    path("account/security/", workspace.account_security, name="account-security"),
    path("team/", team.team, name="team"),
    path("team/roles/", team.team_roles, name="team-roles"),
    path("team/<int:membership_id>/role/", team.team_change_role, name="team-change-role"),
    path("team/<int:membership_id>/remove/", team.team_remove, name="team-remove"),
    path("team/<int:membership_id>/transfer/", team.team_transfer, name="team-transfer"),
    path("audit/", audit.audit_log, name="audit-log"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
]
