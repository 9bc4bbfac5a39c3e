"""Identity state changes. Each runs in one transaction with its audit row."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from enclave.accounts.actions import do_create_account
from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.core.validation import MAX_EMAIL_LENGTH, clean_email
from enclave.identity.models import Member, OwnerSetupToken

SETUP_TOKEN_LIFETIME = dt.timedelta(hours=24)
MAX_PASSWORD_LENGTH = 1024


class SetupError(Exception):
    """The set-up link cannot be used. ``str()`` is safe to show the user."""


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def do_issue_owner_setup_link(*, actor=None) -> str | None:
    """Issue a one-time owner set-up URL if no member exists yet; else return None.

    Earlier unused links are invalidated, so only the last printed link works.
    """
    with transaction.atomic():
        if Member.objects.exists():
            return None
        OwnerSetupToken.objects.filter(used_at__isnull=True).delete()
        token = secrets.token_urlsafe(32)
        row = OwnerSetupToken.objects.create(
            token_hash=_hash_token(token), expires_at=clock.now() + SETUP_TOKEN_LIFETIME
        )
        audit.record(AuditEventType.OWNER_SETUP_ISSUED, actor=actor, target_type="setup_token",
                     target_id=row.pk)
    return f"{settings.CONFIG.public_url}/app/setup/{token}"


def setup_token_valid(token: str) -> bool:
    return _usable_token(OwnerSetupToken, token) is not None and not Member.objects.exists()


def do_create_first_owner(token: str, email: str, password: str, *, request=None) -> Member:
    """Create the first owner from a set-up link. Raises SetupError or ValidationError."""
    email = clean_email(email)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": "Passwords are at most 1024 characters."})
    with transaction.atomic():
        row = (OwnerSetupToken.objects.select_for_update()
               .filter(token_hash=_hash_token(token[:128])).first())
        if row is None or row.used_at is not None or row.expires_at <= clock.now():
            raise SetupError("This set-up link is invalid, used or expired. "
                             "Restart Enclave to print a new one.")
        if Member.objects.exists():
            raise SetupError("Enclave already has an owner.")
        member = Member(email=email)
        try:
            validate_password(password, member)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        member.set_password(password)
        member.save()
        row.used_at = clock.now()
        row.save(update_fields=["used_at"])
        audit.record(AuditEventType.OWNER_CREATED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
        # The first owner gets a workspace named after their email domain (renamable).
        do_create_account(email.rsplit("@", 1)[1], owner=member, actor=member, request=request)
    return member


# --- sign-up ("check your email": the answer never says whether the address is known) ---

class TokenError(Exception):
    """A sign-up or reset link cannot be used. ``str()`` is safe to show."""


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, _hash_token(token)


def do_request_signup(email: str, *, request=None) -> None:
    """Email a sign-up link, or — if the address already has a login — a note saying so.

    The caller shows the same "check your email" page either way. Raises ValidationError
    only for a malformed address (which says nothing about existence).
    """
    from enclave.identity import mail

    email = clean_email(email)
    with transaction.atomic():
        existing = Member.objects.filter(email__iexact=email).exists()
        audit.record(AuditEventType.SIGNUP_REQUESTED, request=request, target_type="signup")
        if existing:
            mail.send_after_commit(
                email, "Your Enclave sign-up",
                "Someone (hopefully you) tried to sign up with this address, but it already "
                f"has an Enclave login. Sign in at {settings.CONFIG.public_url}/app/login/ or "
                f"reset your password at {settings.CONFIG.public_url}/app/password/reset/.")
            return
        token, token_hash = _new_token()
        from enclave.identity.models import SignupToken

        SignupToken.objects.create(
            email=email, token_hash=token_hash,
            expires_at=clock.now() + dt.timedelta(hours=settings.SIGNUP_LIFETIME_HOURS))
        mail.send_after_commit(
            email, "Finish signing up for Enclave",
            f"Finish creating your Enclave account within {settings.SIGNUP_LIFETIME_HOURS} "
            f"hours: {settings.CONFIG.public_url}/app/signup/{token}\n\n"
            "If you did not ask for this, ignore this email.")


def _usable_token(model, token: str):
    """The unused, unexpired row of ``model`` for ``token`` (looked up by hash), or None."""
    if not token or len(token) > 128:
        return None
    row = model.objects.filter(token_hash=_hash_token(token)).first()
    if row is None or row.used_at is not None or row.expires_at <= clock.now():
        return None
    return row


def usable_signup(token: str):
    from enclave.identity.models import SignupToken

    return _usable_token(SignupToken, token)


def do_complete_signup(token: str, account_name: str, password: str, *, request=None) -> Member:
    """Create the member, their account and owner membership from a sign-up link."""
    from enclave.accounts.actions import clean_account_name
    from enclave.identity.models import SignupToken

    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": "Passwords are at most 1024 characters."})
    account_name = clean_account_name(account_name)
    with transaction.atomic():
        row = (SignupToken.objects.select_for_update()
               .filter(token_hash=_hash_token(token[:128])).first())
        if row is None or row.used_at is not None or row.expires_at <= clock.now():
            raise TokenError("This sign-up link is invalid, used or expired. Sign up again.")
        if Member.objects.filter(email__iexact=row.email).exists():
            raise TokenError("This address already has an Enclave login. Sign in instead.")
        member = Member(email=row.email)
        member.identity_account_names = (account_name,)
        try:
            validate_password(password, member)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        member.set_password(password)
        member.save()
        row.used_at = clock.now()
        row.save(update_fields=["used_at"])
        account = do_create_account(account_name, owner=member, actor=member, request=request)
        audit.record(AuditEventType.SIGNUP_COMPLETED, actor=member, account_id=account.pk,
                     request=request, target_type="member", target_id=member.pk)
    return member


# --- log in / log out ---

def _dummy_hash(password: str) -> None:
    """Spend the same argon2id time as a real check (unknown email, throttled attempt)."""
    from django.contrib.auth.hashers import make_password

    make_password(password[:MAX_PASSWORD_LENGTH])


def check_credentials(email: str, password: str, *, request=None) -> Member | None:
    """The member if ``email`` and ``password`` are right and not throttled, else None.

    Unknown email, wrong password, inactive member and throttled attempts all take an
    argon2id hash's time and return None; each failure is audited (never the password).
    A hash under older parameters is upgraded on success (Django's ``must_update``).
    """
    from enclave.identity import throttle

    ip = audit.client_ip(request)
    email = email.strip()[:MAX_EMAIL_LENGTH]
    blocked = throttle.blocked_scopes(email, ip)
    member = Member.objects.filter(email__iexact=email).first() if email else None
    if blocked:
        _dummy_hash(password)
        with transaction.atomic():
            audit.record(AuditEventType.LOGIN_THROTTLED, actor=member, request=request,
                         target_type="login", extra={"limits": blocked})
        return None
    upgraded = False
    if member is None:
        _dummy_hash(password)
        ok = False
    else:
        old_hash = member.password
        ok = member.check_password(password) and member.is_active
        upgraded = ok and member.password != old_hash
    if not ok:
        throttle.record_failure(email, ip)
        with transaction.atomic():
            audit.record(AuditEventType.LOGIN_FAILED, actor=member, request=request,
                         target_type="login",
                         extra={"reason": "unknown_email" if member is None else "bad_password"})
        return None
    throttle.record_success(email)
    if upgraded:
        with transaction.atomic():
            audit.record(AuditEventType.PASSWORD_REHASHED, actor=member, request=request,
                         target_type="member", target_id=member.pk)
    return member


def do_complete_login(request, member: Member, *, method: str) -> None:
    """Sign ``member`` in on this request: new session id, a MemberSession row, audit."""
    from django.contrib.auth import login

    with transaction.atomic():
        login(request, member, backend="django.contrib.auth.backends.ModelBackend")
        audit.record(AuditEventType.LOGIN_SUCCEEDED, actor=member, request=request,
                     target_type="member", target_id=member.pk, extra={"method": method})


def do_logout(request) -> None:
    from django.contrib.auth import logout

    member = request.user if request.user.is_authenticated else None
    with transaction.atomic():
        if member is not None:
            audit.record(AuditEventType.LOGOUT, actor=member, request=request,
                         target_type="member", target_id=member.pk)
        logout(request)


# --- sessions ---

def do_revoke_session(member: Member, session_id: int, *, request=None) -> bool:
    """End one of ``member``'s sessions (its next request is refused). False if not theirs."""
    from enclave.identity.models import MemberSession

    with transaction.atomic():
        changed = MemberSession.objects.filter(
            pk=session_id, member=member, revoked_at__isnull=True).update(revoked_at=clock.now())
        if changed:
            audit.record(AuditEventType.SESSION_REVOKED, actor=member, request=request,
                         target_type="session", target_id=session_id)
    return bool(changed)


def _end_sessions(member: Member, *, keep_key_hash: str | None = None) -> int:
    from enclave.identity.models import MemberSession

    rows = MemberSession.objects.filter(member=member, revoked_at__isnull=True)
    if keep_key_hash:
        rows = rows.exclude(key_hash=keep_key_hash)
    return rows.update(revoked_at=clock.now())


def do_sign_out_everywhere(request) -> int:
    """End every session of the signed-in member, this one included."""
    from django.contrib.auth import logout

    member = request.user
    with transaction.atomic():
        count = _end_sessions(member)
        audit.record(AuditEventType.SESSIONS_REVOKED_ALL, actor=member, request=request,
                     target_type="member", target_id=member.pk, extra={"sessions": count})
        logout(request)
    return count


def do_switch_account(request, account_id: int) -> bool:
    """Make ``account_id`` the session's account (a privilege change: new session id)."""
    from enclave.accounts.models import Membership
    from enclave.identity import sessions
    from enclave.identity.models import MemberSession

    member = request.user
    if not Membership.objects.filter(member=member, account_id=account_id).exists():
        return False
    row = request.member_session
    if row.account_id == account_id:
        return True
    with transaction.atomic():
        MemberSession.objects.filter(pk=row.pk).update(account_id=account_id)
        audit.record(AuditEventType.ACCOUNT_SWITCHED, actor=member, account_id=account_id,
                     request=request, target_type="session", target_id=row.pk)
        sessions.rotate(request)
    return True


# --- passwords ---

def _set_new_password(member: Member, password: str) -> None:
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"new_password": "Passwords are at most 1024 characters."})
    try:
        validate_password(password, member)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from None
    member.set_password(password)
    member.save(update_fields=["password"])


def do_change_password(request, current: str, new: str) -> None:
    """Change the signed-in member's password; every other session ends, this one gets a
    new id. Raises ValidationError (wrong current password, weak new one)."""
    from enclave.identity import sessions

    member = request.user
    if len(current) > MAX_PASSWORD_LENGTH or not member.check_password(current):
        raise ValidationError({"current_password": "Your current password is not correct."})
    from django.contrib.auth import update_session_auth_hash

    from enclave.identity.models import MemberSession

    row = request.member_session
    with transaction.atomic():
        _set_new_password(member, new)
        # Keeps this session valid under the new hash and gives it a new id.
        update_session_auth_hash(request, member)
        new_hash = sessions.key_hash(request.session.session_key)
        MemberSession.objects.filter(pk=row.pk).update(key_hash=new_hash)
        ended = _end_sessions(member, keep_key_hash=new_hash)
        audit.record(AuditEventType.PASSWORD_CHANGED, actor=member, request=request,
                     target_type="member", target_id=member.pk, extra={"sessions_ended": ended})


def do_request_password_reset(email: str, *, request=None) -> None:
    """Email a reset link if ``email`` has a login; otherwise do nothing visible.

    The caller shows the same page either way (no enumeration). Malformed addresses raise
    ValidationError, which reveals nothing about existence.
    """
    from enclave.identity import mail
    from enclave.identity.models import PasswordResetToken

    email = clean_email(email)
    with transaction.atomic():
        member = Member.objects.filter(email__iexact=email, is_active=True).first()
        audit.record(AuditEventType.PASSWORD_RESET_REQUESTED, actor=member, request=request,
                     target_type="password_reset")
        if member is None:
            return
        token, token_hash = _new_token()
        PasswordResetToken.objects.create(
            member=member, token_hash=token_hash,
            expires_at=clock.now() + dt.timedelta(
                minutes=settings.PASSWORD_RESET_LIFETIME_MINUTES))
        mail.send_after_commit(
            member.email, "Reset your Enclave password",
            f"Choose a new password within {settings.PASSWORD_RESET_LIFETIME_MINUTES} minutes: "
            f"{settings.CONFIG.public_url}/app/password/reset/{token}\n\n"
            "If you did not ask for this, ignore this email; your password is unchanged.")


def usable_reset(token: str):
    from enclave.identity.models import PasswordResetToken

    return _usable_token(PasswordResetToken, token)


def do_reset_password(token: str, new: str, *, request=None) -> Member:
    """Set a new password from a reset link; ends every session of the member."""
    from enclave.identity.models import PasswordResetToken

    with transaction.atomic():
        row = (PasswordResetToken.objects.select_for_update().select_related("member")
               .filter(token_hash=_hash_token(token[:128])).first())
        if row is None or row.used_at is not None or row.expires_at <= clock.now():
            raise TokenError("This reset link is invalid, used or expired. Ask for a new one.")
        member = row.member
        _set_new_password(member, new)
        row.used_at = clock.now()
        row.save(update_fields=["used_at"])
        PasswordResetToken.objects.filter(member=member, used_at__isnull=True).update(
            used_at=clock.now())
        ended = _end_sessions(member)
        audit.record(AuditEventType.PASSWORD_RESET_COMPLETED, actor=member, request=request,
                     target_type="member", target_id=member.pk, extra={"sessions_ended": ended})
    return member


# --- MFA ---

def do_begin_totp_enrolment(member: Member) -> str:
    """Start (or restart) TOTP enrolment; returns the new secret to show once.

    Refused while a confirmed device exists (disable first). Not audited: nothing is
    enabled until :func:`do_confirm_totp`.
    """
    from enclave.identity import mfa
    from enclave.identity.models import TotpDevice

    secret = mfa.new_secret()
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(member=member).first()
        if device and device.confirmed_at:
            raise ValidationError("MFA is already enabled.")
        TotpDevice.objects.update_or_create(member=member, defaults={
            "secret": secret, "confirmed_at": None, "last_used_step": 0,
            "created_at": clock.now()})
    return secret


def pending_totp_secret(member: Member) -> str | None:
    from enclave.identity.models import TotpDevice

    device = TotpDevice.objects.filter(member=member, confirmed_at__isnull=True).first()
    return device.secret if device else None


def _new_recovery_codes(member: Member) -> list[str]:
    from enclave.identity import mfa
    from enclave.identity.models import RecoveryCode

    RecoveryCode.objects.filter(member=member).delete()
    codes = mfa.new_recovery_codes()
    RecoveryCode.objects.bulk_create([
        RecoveryCode(member=member,
                     code_hash=mfa.hash_recovery_code(mfa.normalise_recovery_code(c)))
        for c in codes])
    return codes


def do_confirm_totp(request, code: str) -> list[str]:
    """Confirm enrolment with a current code; returns the 10 recovery codes (shown once).

    Raises ValidationError for a wrong or reused code. The session gets a new id.
    """
    from enclave.identity import mfa, sessions
    from enclave.identity.models import TotpDevice

    member = request.user
    with transaction.atomic():
        device = (TotpDevice.objects.select_for_update()
                  .filter(member=member, confirmed_at__isnull=True).first())
        if device is None:
            raise ValidationError({"code": "Start the set-up again."})
        step = mfa.matching_step(device.secret, code, device.last_used_step)
        if step is None:
            raise ValidationError({"code": "That code is not correct. Enter the current "
                                           "6-digit code from your app."})
        device.confirmed_at = clock.now()
        device.last_used_step = step
        device.save(update_fields=["confirmed_at", "last_used_step"])
        codes = _new_recovery_codes(member)
        audit.record(AuditEventType.MFA_ENABLED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
        sessions.rotate(request)
    return codes


def verify_second_factor(member: Member, code: str, *, request=None) -> bool:
    """Check a TOTP code (each accepted once) or an unused recovery code (then used up).

    Failures are audited. Must be called outside a transaction (it commits its own).
    """
    from enclave.identity import mfa
    from enclave.identity.models import RecoveryCode, TotpDevice

    code = (code or "")[:64]
    with transaction.atomic():
        device = (TotpDevice.objects.select_for_update()
                  .filter(member=member, confirmed_at__isnull=False).first())
        if device is None:
            return False
        if mfa.looks_like_totp(code):
            step = mfa.matching_step(device.secret, code, device.last_used_step)
            if step is not None:
                device.last_used_step = step
                device.save(update_fields=["last_used_step"])
                return True
        else:
            normalised = mfa.normalise_recovery_code(code)
            if normalised:
                used = RecoveryCode.objects.filter(
                    member=member, code_hash=mfa.hash_recovery_code(normalised),
                    used_at__isnull=True).update(used_at=clock.now())
                if used:
                    audit.record(AuditEventType.RECOVERY_CODE_USED, actor=member,
                                 request=request, target_type="member", target_id=member.pk)
                    return True
        audit.record(AuditEventType.MFA_CHALLENGE_FAILED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
    return False


def do_regenerate_recovery_codes(request) -> list[str]:
    member = request.user
    with transaction.atomic():
        codes = _new_recovery_codes(member)
        audit.record(AuditEventType.RECOVERY_CODES_REGENERATED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
    return codes


def do_disable_mfa(request) -> None:
    """Remove the authenticator and recovery codes (needs recent authentication)."""
    from enclave.identity import sessions
    from enclave.identity.models import RecoveryCode, TotpDevice

    member = request.user
    with transaction.atomic():
        deleted, _ = TotpDevice.objects.filter(member=member).delete()
        RecoveryCode.objects.filter(member=member).delete()
        if deleted:
            audit.record(AuditEventType.MFA_DISABLED, actor=member, request=request,
                         target_type="member", target_id=member.pk)
            sessions.rotate(request)


def do_reauthenticate(request, password: str, code: str) -> bool:
    """Re-prove identity (password, plus MFA when enrolled) for sensitive actions."""
    from enclave.identity.models import MemberSession

    member = request.user
    if len(password) > MAX_PASSWORD_LENGTH or not member.check_password(password):
        _record_reauth_failure(request, member)
        return False
    if member.mfa_enabled and not verify_second_factor(member, code, request=request):
        return False
    with transaction.atomic():
        MemberSession.objects.filter(pk=request.member_session.pk).update(
            authenticated_at=clock.now())
        audit.record(AuditEventType.REAUTHENTICATED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
    return True


def _record_reauth_failure(request, member) -> None:
    with transaction.atomic():
        audit.record(AuditEventType.LOGIN_FAILED, actor=member, request=request,
                     target_type="reauth", extra={"reason": "bad_password"})


# How long ended sessions and spent tokens stay before the housekeeping job removes them.
ENDED_SESSION_RETENTION = dt.timedelta(days=30)
SPENT_TOKEN_RETENTION = dt.timedelta(days=1)
IDLE_THROTTLE_RETENTION = dt.timedelta(days=1)


def do_purge_expired_identity_records(*, actor=None) -> dict[str, int]:
    """Delete ended sessions, spent or expired tokens and idle throttle counters.

    System action (scheduled daily); takes "now" from the clock. Returns counts per table.
    """
    from django.contrib.sessions.models import Session
    from django.db.models import Q

    from enclave.identity.models import (
        MemberSession,
        PasswordResetToken,
        SignupToken,
        ThrottleCounter,
    )

    now = clock.now()
    session_cutoff = now - ENDED_SESSION_RETENTION
    token_cutoff = now - SPENT_TOKEN_RETENTION
    with transaction.atomic():
        counts = {
            "sessions": MemberSession.objects.filter(
                Q(revoked_at__lt=session_cutoff) | Q(absolute_expires_at__lt=session_cutoff)
            ).delete()[0],
            "django_sessions": Session.objects.filter(expire_date__lt=now).delete()[0],
            "throttle": ThrottleCounter.objects.filter(
                last_failure_at__lt=now - IDLE_THROTTLE_RETENTION
            ).filter(Q(blocked_until__isnull=True) | Q(blocked_until__lt=now)).delete()[0],
        }
        for name, model in (("setup_tokens", OwnerSetupToken), ("signup_tokens", SignupToken),
                            ("reset_tokens", PasswordResetToken)):
            counts[name] = model.objects.filter(
                Q(expires_at__lt=token_cutoff) | Q(used_at__lt=token_cutoff)
            ).delete()[0]
        audit.record(AuditEventType.IDENTITY_RECORDS_PURGED, actor=actor, extra=counts)
    return counts
