"""Identity pages under /app/. What each route needs is its entry in
``access.endpoints``."""

from django.urls import path

from enclave.identity import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.login_view, name="login"),
    path("login/mfa/", views.login_mfa, name="login-mfa"),
    path("logout/", views.logout_view, name="logout"),
    path("sessions/", views.sessions_page, name="sessions"),
    path("sessions/<int:session_id>/revoke/", views.revoke_session, name="session-revoke"),
    path("sessions/revoke-all/", views.revoke_all_sessions, name="sessions-revoke-all"),
    path("password/", views.password_change, name="password-change"),
    path("password/reset/", views.password_reset, name="password-reset"),
    path("password/reset/<str:token>", views.password_reset_confirm,
         name="password-reset-confirm"),
    path("mfa/", views.mfa_page, name="mfa"),
    path("mfa/setup/", views.mfa_setup, name="mfa-setup"),
    path("mfa/recovery-codes/", views.mfa_recovery_codes, name="mfa-recovery-codes"),
    path("mfa/disable/", views.mfa_disable, name="mfa-disable"),
    path("reauth/", views.reauth, name="reauth"),
]
