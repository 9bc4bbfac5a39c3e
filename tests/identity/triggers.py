"""One trigger per identity/accounts audit event type, for tests/core/test_audit.py."""

from __future__ import annotations

from enclave.core.models import AuditEventType
from tests.identity.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    enable_mfa,
    https_client,
    last_link,
    log_in,
    mailing,
    make_member,
    totp_now,
)


def _signed_in(email="jane@example.com"):
    make_member(email)
    client = https_client()
    log_in(client, email)
    return client


def _with_mfa():
    client = _signed_in()
    secret, codes = enable_mfa(client)
    return client, secret, codes


def identity_records_purged(f):
    from enclave.identity.actions import do_purge_expired_identity_records

    do_purge_expired_identity_records()


def signup_requested(f):
    https_client().post("/app/signup/", {"email": "new@example.com"})


def signup_completed(f):
    with mailing():
        https_client().post("/app/signup/", {"email": "new@example.com"})
    token = last_link("/app/signup/")
    https_client().post(f"/app/signup/{token}", {"account_name": "Newco", "password": PASSWORD})


def login_failed(f):
    log_in(https_client(), "nobody@example.com")


def login_throttled(f):
    client = https_client()
    for _ in range(6):
        log_in(client, "nobody@example.com")


def mfa_challenge_failed(f):
    _with_mfa()
    client = https_client()
    log_in(client)
    client.post("/app/login/mfa/", {"code": "000000"})


def recovery_code_used(f):
    _, _, codes = _with_mfa()
    client = https_client()
    log_in(client)
    client.post("/app/login/mfa/", {"code": codes[0]})


def reauthenticated(f):
    _signed_in().post("/app/reauth/", {"password": PASSWORD})


def session_revoked(f):
    client = _signed_in()
    log_in(https_client())
    from enclave.identity.models import MemberSession

    other = MemberSession.objects.order_by("-pk").first()
    client.post(f"/app/sessions/{other.pk}/revoke/")


def account_switched(f):
    from enclave.accounts.models import Account, Membership
    from enclave.identity.models import Member

    client = _signed_in()
    second = Account.objects.create(name="Second")
    Membership.objects.create(member=Member.objects.get(), account=second, role="user")
    client.post("/app/account/switch/", {"account": second.pk})


def password_reset_completed(f):
    make_member()
    with mailing():
        https_client().post("/app/password/reset/", {"email": "jane@example.com"})
    token = last_link("/app/password/reset/")
    https_client().post(f"/app/password/reset/{token}", {"new_password": NEW_PASSWORD})


def password_rehashed(f):
    from django.test import override_settings

    with override_settings(ARGON2_PARAMETERS={"time_cost": 2, "memory_cost": 19456,
                                              "parallelism": 1}):
        make_member()
    log_in(https_client())


def invitation_sent(f):
    with mailing():
        _signed_in().post("/app/account/invite/", {"email": "new@example.com", "role": "user"})


def invitation_accepted(f):
    invitation_sent(f)
    token = last_link("/app/invite/")
    https_client().post(f"/app/invite/{token}", {"password": PASSWORD})


def account_security_changed(f):
    _signed_in().post("/app/account/security/", {"idle_timeout_minutes": 60})


def _recovery_regenerated(f):
    client, _, _ = _with_mfa()
    client.post("/app/mfa/recovery-codes/")


def _mfa_disabled(f):
    client, _, _ = _with_mfa()
    client.post("/app/mfa/disable/")


TRIGGERS = {
    AuditEventType.IDENTITY_RECORDS_PURGED: identity_records_purged,
    AuditEventType.SIGNUP_REQUESTED: signup_requested,
    AuditEventType.SIGNUP_COMPLETED: signup_completed,
    AuditEventType.LOGIN_SUCCEEDED: lambda f: _signed_in(),
    AuditEventType.LOGIN_FAILED: login_failed,
    AuditEventType.LOGIN_THROTTLED: login_throttled,
    AuditEventType.LOGOUT: lambda f: _signed_in().post("/app/logout/"),
    AuditEventType.MFA_CHALLENGE_FAILED: mfa_challenge_failed,
    AuditEventType.REAUTHENTICATED: reauthenticated,
    AuditEventType.SESSION_REVOKED: session_revoked,
    AuditEventType.SESSIONS_REVOKED_ALL: lambda f: _signed_in().post("/app/sessions/revoke-all/"),
    AuditEventType.ACCOUNT_SWITCHED: account_switched,
    AuditEventType.PASSWORD_CHANGED: lambda f: _signed_in().post(
        "/app/password/", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    AuditEventType.PASSWORD_RESET_REQUESTED: lambda f: https_client().post(
        "/app/password/reset/", {"email": "nobody@example.com"}),
    AuditEventType.PASSWORD_RESET_COMPLETED: password_reset_completed,
    AuditEventType.PASSWORD_REHASHED: password_rehashed,
    AuditEventType.MFA_ENABLED: lambda f: _with_mfa(),
    AuditEventType.MFA_DISABLED: _mfa_disabled,
    AuditEventType.RECOVERY_CODES_REGENERATED: _recovery_regenerated,
    AuditEventType.RECOVERY_CODE_USED: recovery_code_used,
    AuditEventType.ACCOUNT_CREATED: signup_completed,
    AuditEventType.ACCOUNT_SECURITY_CHANGED: account_security_changed,
    AuditEventType.INVITATION_SENT: invitation_sent,
    AuditEventType.INVITATION_ACCEPTED: invitation_accepted,
}

__all__ = ["TRIGGERS", "totp_now"]
