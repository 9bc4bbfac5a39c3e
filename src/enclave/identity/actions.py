"""Identity state changes. Each runs in one transaction with its audit row.

Actions on a member's own identity (password, sessions, MFA, re-authentication) take the
member first and ``*, actor: Principal``, authorized with ``access.authorize_self``: only
the member's own session may change them. Signing in establishes a principal, so those
few steps (``check_credentials``, ``do_complete_login``) work from the request instead.
Changing the session cookie (a new id after a privilege change) is the view's job,
after the action.

Every check of a secret is throttled (``identity.throttle``): passwords at login,
re-authentication and password change count on the same per-address and per-IP limits;
second factors count on their own per-member limit wherever they are checked. Sign-up and
password-reset requests are rate-limited per IP and per address and only queue a mail job
(``core.mail``): the request never looks the address up, so its work and its answer are
the same whether or not the address has a login.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from enclave.access.principal import Principal, authorize_self, authorize_system
from enclave.core import audit, clock, mail, ratelimit
from enclave.core.models import AuditEventType
from enclave.core.validation import MAX_EMAIL_LENGTH, canonical_email, clean_email
from enclave.identity import throttle
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
    return usable_setup_token(token) is not None and not Member.objects.exists()


def usable_setup_token(token: str):
    return _usable_token(OwnerSetupToken, token)


def do_create_member_from_setup_link(token: str, email: str, password: str, *,
                                     request=None) -> Member:
    """Create the first member from a set-up link (the caller, ``accounts.onboarding``,
    gives them their account in the same transaction). Raises SetupError or
    ValidationError; nothing is written unless everything succeeds."""
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
        member = _new_member(email, password, field="password")
        row.used_at = clock.now()
        row.save(update_fields=["used_at"])
        audit.record(AuditEventType.OWNER_CREATED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
    return member


def _new_member(email: str, password: str, *, field: str, account_names=()) -> Member:
    member = Member(email=email)
    member.identity_account_names = tuple(account_names)
    try:
        validate_password(password, member)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None
    member.set_password(password)
    member.save()
    return member


# --- sign-up ("check your email": the answer never says whether the address is known) ---

class TokenError(Exception):
    """A sign-up or reset link cannot be used. ``str()`` is safe to show."""


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, _hash_token(token)


# The worker's mail job (identity.tasks) and the kinds of mail it sends.
SEND_ACCOUNT_MAIL = "enclave.identity.send_account_mail"
SIGNUP_MAIL, RESET_MAIL = "signup", "password_reset"
ACCOUNT_MAIL_LIMITS = ("account_mail.ip", "account_mail.address")


class TooManyRequests(Exception):
    """Too many sign-up or reset requests from this client or for this address.
    ``retry_after`` is in seconds; the answer is the same whether the address is known."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many requests.")
        self.retry_after = retry_after


def _limit_account_mail(email: str, request) -> None:
    """Count a mail request against the per-IP, then the per-address limit (the address
    counts whether or not it has a login). Raises TooManyRequests when over either."""
    ip_limit, address_limit = ACCOUNT_MAIL_LIMITS
    ip = audit.client_ip(request)
    for name, ident in ((ip_limit, ip), (address_limit, email)):
        if ident is None:
            continue
        decision = ratelimit.hit(name, ident)
        if not decision.allowed:
            raise TooManyRequests(decision.retry_after)


def _request_account_mail(kind: str, email: str, event: AuditEventType, target: str,
                          request) -> None:
    email = clean_email(email)
    _limit_account_mail(email, request)
    with transaction.atomic():
        # No member lookup here: the worker's job decides what the mail says.
        audit.record(event, request=request, target_type=target)
        mail.enqueue(SEND_ACCOUNT_MAIL, kind=kind, email=email)


def do_request_signup(email: str, *, request=None) -> None:
    """Queue the sign-up mail for ``email``: a link, or — if the address already has a
    login — a note saying so (decided by the worker, :func:`do_send_account_mail`).

    The caller shows the same "check your email" page either way; this does the same work
    either way. Raises ValidationError for a malformed address and TooManyRequests over
    the limits, neither of which says anything about existence.
    """
    _request_account_mail(SIGNUP_MAIL, email, AuditEventType.SIGNUP_REQUESTED, "signup",
                          request)


def _signup_mail(email: str) -> tuple[str, str, str]:
    from enclave.identity.models import SignupToken

    with transaction.atomic():
        if Member.objects.with_email(email).exists():
            return (email, "Your Enclave sign-up",
                    "Someone (hopefully you) tried to sign up with this address, but it "
                    "already has an Enclave login. Sign in at "
                    f"{settings.CONFIG.public_url}/app/login/ or reset your password at "
                    f"{settings.CONFIG.public_url}/app/password/reset/.")
        token, token_hash = _new_token()
        SignupToken.objects.create(
            email=email, token_hash=token_hash,
            expires_at=clock.now() + dt.timedelta(hours=settings.SIGNUP_LIFETIME_HOURS))
    return (email, "Finish signing up for Enclave",
            f"Finish creating your Enclave account within {settings.SIGNUP_LIFETIME_HOURS} "
            f"hours: {settings.CONFIG.public_url}/app/signup/{token}\n\n"
            "If you did not ask for this, ignore this email.")


def _reset_mail(email: str) -> tuple[str, str, str] | None:
    from enclave.identity.models import PasswordResetToken

    with transaction.atomic():
        member = Member.objects.with_email(email).filter(is_active=True).first()
        if member is None:
            return None
        token, token_hash = _new_token()
        PasswordResetToken.objects.create(
            member=member, token_hash=token_hash,
            expires_at=clock.now() + dt.timedelta(
                minutes=settings.PASSWORD_RESET_LIFETIME_MINUTES))
    return (member.email, "Reset your Enclave password",
            f"Choose a new password within {settings.PASSWORD_RESET_LIFETIME_MINUTES} "
            f"minutes: {settings.CONFIG.public_url}/app/password/reset/{token}\n\n"
            "If you did not ask for this, ignore this email; your password is unchanged.")


def do_send_account_mail(kind: str, email: str, *, actor=None) -> None:
    """The worker's half of a sign-up or reset request (system only): look the address
    up, mint the one-time token if one is due, commit, then send. Sign-up: a link, or a
    note when the address has a login. Reset: a link for an active member, else nothing.

    Audited when requested (``SIGNUP_REQUESTED``, ``PASSWORD_RESET_REQUESTED``, with the
    client address); each token row records when it was issued. Returns nothing, so the
    worker's log line carries no token.
    """
    authorize_system(actor)
    email = canonical_email(email)
    if kind == SIGNUP_MAIL:
        message = _signup_mail(email)
    elif kind == RESET_MAIL:
        message = _reset_mail(email)
    else:
        raise ValueError(f"unknown account mail kind {kind!r}")
    if message is not None:
        mail.send(*message)


def _usable_token(model, token: str):
    """The unused, unexpired row of ``model`` for ``token`` (looked up by hash), or None."""
    if not token or len(token) > 128:
        return None
    row = model.objects.filter(token_hash=_hash_token(token)).first()
    if row is None or row.used_at is not None or row.expires_at <= clock.now():
        return None
    return row


def do_create_member_from_signup_link(token: str, password: str, *, account_name: str,
                                      request=None) -> Member:
    """Create the member of a sign-up link (the caller, ``accounts.onboarding``, creates
    their account in the same transaction; ``account_name`` only feeds the password
    similarity check). Raises TokenError or ValidationError."""
    from enclave.identity.models import SignupToken

    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": "Passwords are at most 1024 characters."})
    with transaction.atomic():
        row = (SignupToken.objects.select_for_update()
               .filter(token_hash=_hash_token(token[:128])).first())
        if row is None or row.used_at is not None or row.expires_at <= clock.now():
            raise TokenError("This sign-up link is invalid, used or expired. Sign up again.")
        if Member.objects.with_email(row.email).exists():
            raise TokenError("This address already has an Enclave login. Sign in instead.")
        member = _new_member(row.email, password, field="password",
                             account_names=(account_name,))
        row.used_at = clock.now()
        row.save(update_fields=["used_at"])
    return member


def do_create_member_from_invitation(email: str, password: str, *, account_name: str
                                     ) -> Member:
    """Create a member for an accepted invitation (``accounts.actions`` holds the
    invitation and calls this in its transaction). Raises ValidationError."""
    if password is None or len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": "Passwords are at most "
                                           f"{MAX_PASSWORD_LENGTH} characters."})
    return _new_member(email, password, field="password", account_names=(account_name,))


def usable_signup(token: str):
    from enclave.identity.models import SignupToken

    return _usable_token(SignupToken, token)


# --- log in / log out ---

def _dummy_hash(password: str) -> None:
    """Spend the same argon2id time as a real check (unknown email, throttled attempt)."""
    from django.contrib.auth.hashers import make_password

    make_password(password[:MAX_PASSWORD_LENGTH])


def check_credentials(email: str, password: str, *, request=None) -> Member | None:
    """The member if ``email`` and ``password`` are right and not throttled, else None.

    Unknown email, wrong password, inactive member and throttled attempts all take an
    argon2id hash's time and return None; each failure is audited (never the password).
    The email is compared, and throttled, in canonical form. A hash under older parameters
    is upgraded on success (Django's ``must_update``).
    """
    ip = audit.client_ip(request)
    email = canonical_email(email)[:MAX_EMAIL_LENGTH]
    blocked = throttle.blocked_scopes(email, ip)
    member = Member.objects.with_email(email).first() if email else None
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


def do_logout(member: Member, *, actor: Principal, request=None) -> None:
    """End the actor's current session (the view then clears the cookie)."""
    from enclave.identity.models import MemberSession

    authorize_self(actor, member)
    with transaction.atomic():
        if actor.session_id is not None:
            MemberSession.objects.filter(pk=actor.session_id, revoked_at__isnull=True).update(
                revoked_at=clock.now())
        audit.record(AuditEventType.LOGOUT, actor=actor, request=request,
                     target_type="member", target_id=member.pk)


# --- sessions ---

def do_revoke_session(member: Member, session_id: int, *, actor: Principal,
                      request=None) -> bool:
    """End one of ``member``'s sessions (its next request is refused). False if not theirs."""
    from enclave.identity.models import MemberSession

    authorize_self(actor, member)
    with transaction.atomic():
        changed = MemberSession.objects.filter(
            pk=session_id, member=member, revoked_at__isnull=True).update(revoked_at=clock.now())
        if changed:
            audit.record(AuditEventType.SESSION_REVOKED, actor=actor, request=request,
                         target_type="session", target_id=session_id)
    return bool(changed)


def _end_sessions(member: Member, *, keep_session_id: int | None = None) -> int:
    from enclave.identity.models import MemberSession

    rows = MemberSession.objects.filter(member=member, revoked_at__isnull=True)
    if keep_session_id is not None:
        rows = rows.exclude(pk=keep_session_id)
    return rows.update(revoked_at=clock.now())


def end_account_sessions(member_id: int, account_id: int, *,
                         keep_session_id: int | None = None) -> int:
    """End the member's sessions in ``account_id`` (their rights there changed). Called by
    the accounts actions after commit; the change itself is what they audit."""
    from enclave.identity.models import MemberSession

    rows = MemberSession.objects.filter(member_id=member_id, account_id=account_id,
                                        revoked_at__isnull=True)
    if keep_session_id is not None:
        rows = rows.exclude(pk=keep_session_id)
    return rows.update(revoked_at=clock.now())


def do_sign_out_everywhere(member: Member, *, actor: Principal, request=None) -> int:
    """End every session of ``member``, the actor's own included (the view then clears
    the cookie)."""
    authorize_self(actor, member)
    with transaction.atomic():
        count = _end_sessions(member)
        audit.record(AuditEventType.SESSIONS_REVOKED_ALL, actor=actor, request=request,
                     target_type="member", target_id=member.pk, extra={"sessions": count})
    return count


def do_switch_account(member: Member, account_id: int, *, actor: Principal,
                      request=None) -> bool:
    """Make ``account_id`` the actor's session's account. False when ``member`` is not a
    member of it. A privilege change: the view gives the session a new id."""
    from enclave.identity.models import MemberSession

    authorize_self(actor, member)
    # The membership relation, read through the member (identity imports no accounts code).
    if not member.memberships.filter(account_id=account_id).exists():
        return False
    with transaction.atomic():
        row = MemberSession.objects.select_for_update().get(pk=actor.session_id)
        if row.account_id == account_id:
            return True
        row.account_id = account_id
        row.save(update_fields=["account"])
        audit.record(AuditEventType.ACCOUNT_SWITCHED, actor=actor, account_id=account_id,
                     request=request, target_type="session", target_id=row.pk)
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


def _refuse_if_throttled(blocked: dict, password: str, *, actor, target: str,
                         request) -> None:
    """Raise throttle.Throttled when ``blocked`` names a limit — after spending a
    password hash's time, without checking any secret, and audited."""
    if not blocked:
        return
    _dummy_hash(password)
    with transaction.atomic():
        audit.record(AuditEventType.LOGIN_THROTTLED, actor=actor, request=request,
                     target_type=target, extra={"limits": sorted(blocked)})
    raise throttle.Throttled(blocked)


def _check_own_password(member: Member, password: str, *, actor, target: str,
                        request) -> bool:
    """A signed-in member proving their password again (re-authentication, password
    change): the login limits apply, on the same counters. True when right (which clears
    the address's counter, as login does); False when wrong (counted and audited)."""
    ip = audit.client_ip(request)
    ok = len(password) <= MAX_PASSWORD_LENGTH and member.check_password(password)
    if not ok:
        throttle.record_failure(member.email, ip)
        with transaction.atomic():
            audit.record(AuditEventType.LOGIN_FAILED, actor=actor, request=request,
                         target_type=target, extra={"reason": "bad_password"})
        return False
    throttle.record_success(member.email)
    return True


def do_change_password(member: Member, current: str, new: str, *, actor: Principal,
                       request=None) -> None:
    """Change ``member``'s password; every session but the actor's ends (the view then
    gives that one a new id). Raises ValidationError (wrong current password, weak new
    one) or throttle.Throttled (too many wrong passwords for this member or from this
    client, counted with login's; nothing is checked then)."""
    authorize_self(actor, member)
    _refuse_if_throttled(throttle.blocking(throttle.password_keys(member.email,
                                                                  audit.client_ip(request))),
                         current, actor=actor, target="password_change", request=request)
    if not _check_own_password(member, current, actor=actor, target="password_change",
                               request=request):
        raise ValidationError({"current_password": "Your current password is not correct."})
    with transaction.atomic():
        _set_new_password(member, new)
        ended = _end_sessions(member, keep_session_id=actor.session_id)
        audit.record(AuditEventType.PASSWORD_CHANGED, actor=actor, request=request,
                     target_type="member", target_id=member.pk, extra={"sessions_ended": ended})


def do_request_password_reset(email: str, *, request=None) -> None:
    """Queue the password-reset mail for ``email``; the worker sends a link only if the
    address has an active login (:func:`do_send_account_mail`).

    The caller shows the same page either way and this does the same work either way (no
    enumeration, by content or by timing). Raises ValidationError for a malformed address
    and TooManyRequests over the limits, neither of which reveals existence.
    """
    _request_account_mail(RESET_MAIL, email, AuditEventType.PASSWORD_RESET_REQUESTED,
                          "password_reset", request)


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

def do_begin_totp_enrolment(member: Member, *, actor: Principal) -> str:
    """Start (or restart) TOTP enrolment; returns the new secret to show once.

    Refused while a confirmed device exists (disable first). Not audited: nothing is
    enabled until :func:`do_confirm_totp`.
    """
    from enclave.identity import mfa

    authorize_self(actor, member)
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


def do_confirm_totp(member: Member, code: str, *, actor: Principal,
                    request=None) -> list[str]:
    """Confirm enrolment with a current code; returns the 10 recovery codes (shown once).

    Raises ValidationError for a wrong or reused code. The view gives the session a new
    id (a privilege change)."""
    from enclave.identity import mfa
    from enclave.identity.models import TotpDevice

    authorize_self(actor, member)
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
        audit.record(AuditEventType.MFA_ENABLED, actor=actor, request=request,
                     target_type="member", target_id=member.pk)
    return codes


def verify_second_factor(member: Member, code: str, *, request=None) -> bool:
    """Check a TOTP code (each accepted once) or an unused recovery code (then used up).

    Throttled on the member's own second-factor limit and the client's IP limit: a wrong
    code counts on both; only a right code clears the member's count (a right password
    never does). While blocked, raises throttle.Throttled without looking at the code.
    Failures are audited. Must be called outside a transaction (it commits its own).
    """
    ip = audit.client_ip(request)
    keys = throttle.second_factor_keys(member.pk, ip)
    blocked = throttle.blocking(keys)
    if blocked:
        with transaction.atomic():
            audit.record(AuditEventType.LOGIN_THROTTLED, actor=member, request=request,
                         target_type="mfa", extra={"limits": sorted(blocked)})
        raise throttle.Throttled(blocked)
    if _second_factor_matches(member, code, request=request):
        throttle.clear(keys, throttle.MFA_PER_MEMBER)
        return True
    throttle.record_failures(keys)
    return False


def _second_factor_matches(member: Member, code: str, *, request=None) -> bool:
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


def do_regenerate_recovery_codes(member: Member, *, actor: Principal,
                                 request=None) -> list[str]:
    authorize_self(actor, member)
    with transaction.atomic():
        codes = _new_recovery_codes(member)
        audit.record(AuditEventType.RECOVERY_CODES_REGENERATED, actor=actor, request=request,
                     target_type="member", target_id=member.pk)
    return codes


def do_disable_mfa(member: Member, *, actor: Principal, request=None) -> bool:
    """Remove the authenticator and recovery codes. True when MFA was on (the view then
    gives the session a new id)."""
    from enclave.identity.models import RecoveryCode, TotpDevice

    authorize_self(actor, member)
    with transaction.atomic():
        deleted, _ = TotpDevice.objects.filter(member=member).delete()
        RecoveryCode.objects.filter(member=member).delete()
        if deleted:
            audit.record(AuditEventType.MFA_DISABLED, actor=actor, request=request,
                         target_type="member", target_id=member.pk)
    return bool(deleted)


def do_reauthenticate(member: Member, password: str, code: str, *, actor: Principal,
                      request=None) -> bool:
    """Re-prove identity (password, plus MFA when enrolled) for sensitive actions: the
    actor's session counts as recently authenticated. False for a wrong password or code.

    Throttled like login, on the same counters (a stolen session cannot guess the
    password faster than the login page allows), and for an MFA member on the
    second-factor limit too: while any of them blocks, raises throttle.Throttled without
    checking the password or the code.
    """
    from enclave.identity.models import MemberSession

    authorize_self(actor, member)
    ip = audit.client_ip(request)
    mfa_enabled = member.mfa_enabled
    blocked = throttle.blocking(throttle.password_keys(member.email, ip))
    if mfa_enabled:
        blocked |= throttle.blocking(throttle.second_factor_keys(member.pk, ip))
    _refuse_if_throttled(blocked, password, actor=actor, target="reauth", request=request)
    if not _check_own_password(member, password, actor=actor, target="reauth",
                               request=request):
        return False
    if mfa_enabled and not verify_second_factor(member, code, request=request):
        return False
    with transaction.atomic():
        MemberSession.objects.filter(pk=actor.session_id).update(authenticated_at=clock.now())
        audit.record(AuditEventType.REAUTHENTICATED, actor=actor, request=request,
                     target_type="member", target_id=member.pk)
    return True


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
