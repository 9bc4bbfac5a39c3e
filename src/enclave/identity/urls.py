"""Identity pages under /app/."""

from django.urls import path

from enclave.identity import views

urlpatterns = [
    path("", views.home, name="app-home"),
    path("setup/<str:token>", views.setup_owner, name="setup-owner"),
    path("signup/", views.signup, name="signup"),
    path("signup/<str:token>", views.signup_complete, name="signup-complete"),
    path("login/", views.login_view, name="login"),
    path("login/mfa/", views.login_mfa, name="login-mfa"),
    path("logout/", views.logout_view, name="logout"),
    path("account/switch/", views.switch_account, name="account-switch"),
    path("account/invite/", views.invite, name="invite"),
    path("account/security/", views.account_security, name="account-security"),
    path("invite/<str:token>", views.accept_invitation, name="accept-invitation"),
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
