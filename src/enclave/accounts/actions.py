"""Account state changes: creation, invitations, security settings. One transaction and
one audit row each (STYLE.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from enclave.accounts.models import (
    IDLE_TIMEOUT_MAX,
    IDLE_TIMEOUT_MIN,
    ROLES,
    Account,
    Invitation,
    Membership,
    Role,
)
from enclave.accounts.permissions import (
    BUILT_IN_ROLES,
    CUSTOM_ROLE_PERMISSIONS,
    close,
    has_perm,
    role_label,
)
from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.core.validation import clean_email

MAX_ACCOUNT_NAME_LENGTH = 100
TOKEN_MAX_LENGTH = 128


class InvitationError(Exception):
    """The invitation cannot be used. ``str()`` is safe to show."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token[:TOKEN_MAX_LENGTH].encode()).hexdigest()


def clean_account_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"account_name": "Enter a name for the account."})
    if len(name) > MAX_ACCOUNT_NAME_LENGTH:
        raise ValidationError({"account_name": "Account names are at most 100 characters."})
    return name


def role_of(member, account_id: int | None) -> str | None:
    if account_id is None:
        return None
    row = Membership.objects.filter(member=member, account_id=account_id).first()
    return row.role if row else None


def do_create_account(name: str, *, owner, actor, request=None) -> Account:
    """Create an account with ``owner`` as its owner. Call inside the caller's transaction
    or alone; raises ValidationError for a bad name."""
    name = clean_account_name(name)
    with transaction.atomic():
        account = Account.objects.create(name=name)
        Membership.objects.create(member=owner, account=account, role="owner")
        audit.record(AuditEventType.ACCOUNT_CREATED, actor=actor, account_id=account.pk,
                     request=request, target_type="account", target_id=account.pk)
    return account


def do_invite_member(account: Account, email: str, role: str, *, actor, request=None) -> str:
    """Invite ``email`` to ``account`` with ``role``; returns the one-time token.

    Needs ``team.manage``; only owners may invite owners. The token is
    stored as SHA-256 and expires after ``INVITATION_LIFETIME_DAYS``; the email is sent
    after commit by the caller-supplied mail function (see identity.mail).
    """
    from enclave.identity import mail

    email = clean_email(email)
    if role not in ROLES:
        raise ValidationError({"role": "Choose one of the listed roles."})
    mine = _require(actor, account.pk, "team.manage")
    if role == "owner" and not (mine.role == "owner" and mine.custom_role_id is None):
        raise PermissionDenied("Only owners can invite owners.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            account=account, email=email, role=role, token_hash=hash_token(token),
            invited_by=actor,
            expires_at=clock.now() + dt.timedelta(days=settings.INVITATION_LIFETIME_DAYS))
        audit.record(AuditEventType.INVITATION_SENT, actor=actor, account_id=account.pk,
                     request=request, target_type="invitation", target_id=invitation.pk,
                     extra={"role": role})
        url = f"{settings.CONFIG.public_url}/app/invite/{token}"
        mail.send_after_commit(
            email, f"You are invited to {account.name} on Enclave",
            f"You have been invited to join {account.name} on Enclave as {role}.\n\n"
            f"Accept within {settings.INVITATION_LIFETIME_DAYS} days: {url}\n\n"
            "If you did not expect this, ignore this email.")
    return token


def usable_invitation(token: str) -> Invitation | None:
    """The invitation for ``token`` if unused and unexpired; None for anything else."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    row = Invitation.objects.select_related("account").filter(token_hash=hash_token(token)).first()
    if row is None or row.accepted_at is not None or row.expires_at <= clock.now():
        return None
    return row


def do_accept_invitation(token: str, *, member=None, password: str | None = None,
                         request=None):
    """Accept an invitation: link ``member`` (whose email must match) or create a member
    with ``password``. Returns the member. Raises InvitationError or ValidationError;
    nothing is written unless everything succeeds."""
    from django.contrib.auth.password_validation import validate_password

    from enclave.identity.models import Member

    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise InvitationError("This invitation link is not valid.")
    with transaction.atomic():
        row = (Invitation.objects.select_for_update().select_related("account")
               .filter(token_hash=hash_token(token)).first())
        if row is None or row.accepted_at is not None or row.expires_at <= clock.now():
            raise InvitationError("This invitation is invalid, already used or expired. "
                                  "Ask for a new one.")
        existing = Member.objects.filter(email__iexact=row.email).first()
        if member is not None:
            if member.email.lower() != row.email.lower():
                raise InvitationError("This invitation is for another email address. "
                                      "Sign in with the invited address to accept it.")
        elif existing is not None:
            raise InvitationError("You already have an Enclave login: sign in to accept.")
        else:
            if password is None or len(password) > settings.PASSWORD_MAX_LENGTH:
                raise ValidationError({"password": "Passwords are at most "
                                       f"{settings.PASSWORD_MAX_LENGTH} characters."})
            member = Member(email=row.email)
            member.identity_account_names = (row.account.name,)
            try:
                validate_password(password, member)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from None
            member.set_password(password)
            member.save()
        Membership.objects.get_or_create(member=member, account=row.account,
                                         defaults={"role": row.role})
        row.accepted_at = clock.now()
        row.accepted_by = member
        row.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(AuditEventType.INVITATION_ACCEPTED, actor=member, account_id=row.account_id,
                     request=request, target_type="invitation", target_id=row.pk,
                     extra={"role": row.role, "new_member": existing is None})
    return member


def do_update_account_security(account: Account, *, idle_timeout_minutes: int,
                               require_mfa: bool, actor, request=None) -> Account:
    """Members with ``account.manage`` (owners) set the account's idle timeout (5–720 min)
    and whether MFA is required."""
    _require(actor, account.pk, "account.manage")
    if not IDLE_TIMEOUT_MIN <= idle_timeout_minutes <= IDLE_TIMEOUT_MAX:
        raise ValidationError({"idle_timeout_minutes": (
            f"Choose between {IDLE_TIMEOUT_MIN} and {IDLE_TIMEOUT_MAX} minutes.")})
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        old = {"idle_timeout_minutes": locked.idle_timeout_minutes,
               "require_mfa": locked.require_mfa}
        new = {"idle_timeout_minutes": idle_timeout_minutes, "require_mfa": require_mfa}
        if old == new:
            return locked
        Account.objects.filter(pk=account.pk).update(**new)
        audit.record(AuditEventType.ACCOUNT_SECURITY_CHANGED, actor=actor,
                     account_id=account.pk, request=request, target_type="account",
                     target_id=account.pk, extra={"old": old, "new": new})
    locked.refresh_from_db()
    return locked


# --- team: roles, removal, ownership (issue 5) ---

class TeamRuleError(Exception):
    """A team change breaks a rule (e.g. the last owner). ``str()`` is safe to show."""


def membership_of(member, account_id: int | None) -> Membership | None:
    """The member's membership in ``account_id`` (with its custom role), or None."""
    if account_id is None or member is None or not getattr(member, "is_authenticated", True):
        return None
    return (Membership.objects.select_related("custom_role", "account")
            .filter(member=member, account_id=account_id).first())


def _require(actor, account_id: int, codename: str) -> Membership:
    mine = membership_of(actor, account_id)
    if not has_perm(mine, codename):
        raise PermissionDenied(f"You need the {codename} permission.")
    return mine


def _end_account_sessions(member_id: int, account_id: int, *, keep_session_id=None) -> None:
    """After commit: end the member's sessions in this account (their rights changed)."""
    from enclave.identity.models import MemberSession

    def end() -> None:
        rows = MemberSession.objects.filter(member_id=member_id, account_id=account_id,
                                            revoked_at__isnull=True)
        if keep_session_id is not None:
            rows = rows.exclude(pk=keep_session_id)
        rows.update(revoked_at=clock.now())

    transaction.on_commit(end)


def _current_session_id(request, actor, target_member_id: int):
    row = getattr(request, "member_session", None)
    return row.pk if row is not None and actor.pk == target_member_id else None


def do_change_role(membership: Membership, role: str | Role, *, actor,
                   request=None) -> Membership:
    """Give ``membership`` a built-in role name or a custom ``Role`` of the same account.

    Needs ``team.manage``; only owners make or unmake owners; the last owner cannot be
    demoted (TeamRuleError). The member's other sessions in the account end after
    commit, so no browser keeps rights it no longer has. Re-authentication is the
    view's job (``require_recent_auth``).
    """
    account_id = membership.account_id
    mine = _require(actor, account_id, "team.manage")
    if isinstance(role, Role):
        if role.account_id != account_id:
            raise ValidationError({"role": "Choose one of the listed roles."})
        new_role, new_custom = "viewer", role
    elif role in BUILT_IN_ROLES:
        new_role, new_custom = role, None
    else:
        raise ValidationError({"role": "Choose one of the listed roles."})
    with transaction.atomic():
        owners = list(Membership.objects.select_for_update()
                      .filter(account_id=account_id, role="owner", custom_role__isnull=True))
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        was_owner = locked.role == "owner" and locked.custom_role_id is None
        becomes_owner = new_role == "owner" and new_custom is None
        if (was_owner or becomes_owner) and mine.role != "owner":
            raise PermissionDenied("Only owners can make or change owners.")
        if (locked.role, locked.custom_role_id) == (new_role, getattr(new_custom, "pk", None)):
            return locked
        if was_owner and not becomes_owner and len(owners) <= 1:
            raise TeamRuleError("The account's last owner cannot be demoted. "
                                "Make someone else an owner first.")
        old = role_label(locked)
        locked.role, locked.custom_role = new_role, new_custom
        locked.save(update_fields=["role", "custom_role"])
        audit.record(AuditEventType.ROLE_CHANGED, actor=actor, account_id=account_id,
                     request=request, target_type="member", target_id=locked.member_id,
                     extra={"old": old, "new": role_label(locked)})
        _end_account_sessions(locked.member_id, account_id,
                              keep_session_id=_current_session_id(request, actor,
                                                                  locked.member_id))
    return locked


def do_remove_member(membership: Membership, *, actor, request=None) -> None:
    """Remove a member from the account. Needs ``team.manage``; only owners remove
    owners; the last owner cannot be removed. Their sessions in the account end."""
    account_id = membership.account_id
    mine = _require(actor, account_id, "team.manage")
    with transaction.atomic():
        owners = list(Membership.objects.select_for_update()
                      .filter(account_id=account_id, role="owner", custom_role__isnull=True))
        locked = Membership.objects.select_for_update().filter(pk=membership.pk).first()
        if locked is None:
            return
        is_owner = locked.role == "owner" and locked.custom_role_id is None
        if is_owner and mine.role != "owner":
            raise PermissionDenied("Only owners can remove owners.")
        if is_owner and len(owners) <= 1:
            raise TeamRuleError("The account's last owner cannot be removed.")
        locked.delete()
        audit.record(AuditEventType.MEMBER_REMOVED, actor=actor, account_id=account_id,
                     request=request, target_type="member", target_id=locked.member_id,
                     extra={"role": role_label(locked)})
        _end_account_sessions(locked.member_id, account_id)


def do_transfer_ownership(membership: Membership, *, actor, request=None) -> Membership:
    """The acting owner makes ``membership`` an owner and becomes an admin."""
    account_id = membership.account_id
    mine = membership_of(actor, account_id)
    if mine is None or mine.role != "owner" or mine.custom_role_id is not None:
        raise PermissionDenied("Only an owner can transfer ownership.")
    if mine.pk == membership.pk:
        raise TeamRuleError("You already own this account.")
    with transaction.atomic():
        target = Membership.objects.select_for_update().get(pk=membership.pk)
        me = Membership.objects.select_for_update().get(pk=mine.pk)
        target.role, target.custom_role = "owner", None
        target.save(update_fields=["role", "custom_role"])
        me.role = "admin"
        me.save(update_fields=["role"])
        audit.record(AuditEventType.OWNERSHIP_TRANSFERRED, actor=actor, account_id=account_id,
                     request=request, target_type="member", target_id=target.member_id,
                     extra={"from_member": me.member_id})
        _end_account_sessions(me.member_id, account_id,
                              keep_session_id=_current_session_id(request, actor, me.member_id))
    return target


def do_save_custom_role(account: Account, name: str, permissions, *, actor,
                        request=None) -> Role:
    """Owners define (or redefine) a custom role from ``CUSTOM_ROLE_PERMISSIONS``.

    Implied permissions are added (``people.write`` brings ``people.read``). Raises
    ValidationError for an empty/too long/built-in name or an unknown permission.
    """
    mine = membership_of(actor, account.pk)
    if mine is None or mine.role != "owner" or mine.custom_role_id is not None:
        raise PermissionDenied("Only owners can define roles.")
    name = " ".join((name or "").split())
    if not name or len(name) > 40 or name.lower() in BUILT_IN_ROLES:
        raise ValidationError({"name": "Choose a name of 1–40 characters that is not a "
                                       "built-in role."})
    unknown = sorted(set(permissions) - CUSTOM_ROLE_PERMISSIONS)
    if unknown:
        raise ValidationError({"permissions": "Not allowed in a custom role: "
                                              f"{', '.join(unknown)}."})
    perms = sorted(close(permissions))
    with transaction.atomic():
        role, _ = Role.objects.select_for_update().get_or_create(account=account, name=name)
        role.permissions = perms
        role.save(update_fields=["permissions"])
        audit.record(AuditEventType.CUSTOM_ROLE_SAVED, actor=actor, account_id=account.pk,
                     request=request, target_type="role", target_id=role.pk,
                     extra={"permissions": perms})
        for row in role.memberships.all():
            _end_account_sessions(row.member_id, account.pk,
                                  keep_session_id=_current_session_id(request, actor,
                                                                      row.member_id))
    return role
