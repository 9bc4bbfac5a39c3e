"""Account state changes: creation, invitations, security settings, the team. One
transaction and one audit row each (STYLE.md); every one authorizes its ``actor``
(an ``access.Principal``) with ``access.authorize``.

Granting is bounded by the granter's own rights (``permissions.may_grant``): a role can
be given — by role change or invitation — only when all its permissions are the
actor's own, and a membership can be changed or removed only when all its current
permissions are the actor's own. Nobody changes their own membership here. Owner-only
rules follow from that (only a holder of every permission can make or unmake an owner)
and from ``ACCOUNT_MANAGE``; nothing compares role names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from enclave.access.permissions import (
    BUILT_IN_ROLES,
    CUSTOM_ROLE_PERMISSIONS,
    ROLE_PERMISSIONS,
    Permission,
    UnknownPermission,
    close,
    may_grant,
    parse,
)
from enclave.access.principal import (
    NotAuthorized,
    Principal,
    authorize,
    authorize_system,
    permissions_of,
)
from enclave.accounts.models import (
    IDLE_TIMEOUT_MAX,
    IDLE_TIMEOUT_MIN,
    ROLES,
    Account,
    Invitation,
    Membership,
    Role,
)
from enclave.billing import entitlements
from enclave.core import audit, clock, mail
from enclave.core.models import AuditEventType
from enclave.core.validation import canonical_email, clean_email

P = Permission
MAX_ACCOUNT_NAME_LENGTH = 100
TOKEN_MAX_LENGTH = 128
# Built-in roles that hold every owner-only permission: "the account's owners".
OWNER_ROLES = tuple(r for r, perms in ROLE_PERMISSIONS.items() if P.ACCOUNT_MANAGE in perms)


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


def do_create_account(name: str, *, owner, actor: Principal, request=None) -> Account:
    """Create an account with ``owner`` as its owner. ``actor`` is the owner's own
    principal (sign-up, first owner): anyone may create their own account. Call inside
    the caller's transaction or alone; raises ValidationError for a bad name."""
    if actor.member_id != owner.pk:
        raise NotAuthorized("An account is created by its own first owner.")
    name = clean_account_name(name)
    with transaction.atomic():
        account = Account.objects.create(name=name)
        Membership.objects.create(member=owner, account=account, role="owner")
        audit.record(AuditEventType.ACCOUNT_CREATED, actor=actor, account_id=account.pk,
                     request=request, target_type="account", target_id=account.pk)
    return account


SEND_INVITATION = "enclave.accounts.send_invitation"


def do_invite_member(account: Account, email: str, role: str, *, actor: Principal,
                     request=None) -> Invitation:
    """Invite ``email`` to ``account`` with built-in ``role``; returns the invitation.

    Needs ``TEAM_MANAGE``, and ``role`` may hold only permissions the actor holds (so
    only owners invite owners). Expires after ``INVITATION_LIFETIME_DAYS``. The mail is
    queued after commit (``core.mail``); the worker mints the link's token
    (:func:`do_send_invitation`), so no link passes through the queue.
    """
    authorize(actor, P.TEAM_MANAGE, account_id=account.pk)
    email = clean_email(email)
    if role not in ROLES:
        raise ValidationError({"role": "Choose one of the listed roles."})
    _require_grantable(actor, ROLE_PERMISSIONS[role], role)
    with transaction.atomic():
        # Members and pending invitations together, within the plan's members.
        entitlements.check(account.pk, entitlements.MEMBERS)
        invitation = Invitation.objects.create(
            account=account, email=email, role=role,
            # A hash of a token nobody is given, until the worker mints the mailed one.
            token_hash=hash_token(secrets.token_urlsafe(32)), invited_by=actor.member,
            expires_at=clock.now() + dt.timedelta(days=settings.INVITATION_LIFETIME_DAYS))
        audit.record(AuditEventType.INVITATION_SENT, actor=actor, account_id=account.pk,
                     request=request, target_type="invitation", target_id=invitation.pk,
                     extra={"role": role})
        mail.enqueue(SEND_INVITATION, invitation_id=invitation.pk)
    return invitation


def do_send_invitation(invitation_id: int, *, actor=None) -> None:
    """The worker's half of an invitation (system only): mint the one-time token, store
    its SHA-256, commit, then mail the link. Nothing for an invitation that is gone,
    accepted or expired. A repeated job mints a new token (the last mailed link works).
    Audited when invited (``INVITATION_SENT``)."""
    authorize_system(actor)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        row = (Invitation.objects.select_for_update().select_related("account")
               .filter(pk=invitation_id).first())
        if row is None or row.accepted_at is not None or row.expires_at <= clock.now():
            return
        row.token_hash = hash_token(token)
        row.save(update_fields=["token_hash"])
    url = f"{settings.CONFIG.public_url}/app/invite/{token}"
    mail.send(row.email, f"You are invited to {row.account.name} on Enclave",
              f"You have been invited to join {row.account.name} on Enclave as "
              f"{row.role}.\n\n"
              f"Accept within {settings.INVITATION_LIFETIME_DAYS} days: {url}\n\n"
              "If you did not expect this, ignore this email.")


def usable_invitation(token: str) -> Invitation | None:
    """The invitation for ``token`` if unused and unexpired; None for anything else."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    row = Invitation.objects.select_related("account").filter(token_hash=hash_token(token)).first()
    if row is None or row.accepted_at is not None or row.expires_at <= clock.now():
        return None
    return row


def _require_inviter_may_still_grant(row: Invitation) -> None:
    """The grant rule again at acceptance: the inviter must still be an active member of
    the account holding ``TEAM_MANAGE`` and every permission of the invited role — an
    invitation must not outlive its inviter's right to grant (a demoted or removed
    admin's pending invitation to ``admin`` grants nothing)."""
    inviter = (Membership.objects.select_related("custom_role")
               .filter(account_id=row.account_id, member_id=row.invited_by_id,
                       member__is_active=True).first()
               if row.invited_by_id is not None else None)
    granter = permissions_of(inviter)
    if P.TEAM_MANAGE not in granter or not may_grant(granter, ROLE_PERMISSIONS[row.role]):
        raise InvitationError("The member who invited you can no longer grant this role. "
                              "Ask the account for a new invitation.")


def do_accept_invitation(token: str, *, member=None, password: str | None = None,
                         request=None):
    """Accept an invitation: link ``member`` (whose email must match) or create a member
    with ``password``. Returns the member. Raises InvitationError (also when the inviter
    may no longer grant the invited role) or ValidationError; nothing is written unless
    everything succeeds."""
    from enclave.identity import actions as identity_actions
    from enclave.identity.models import Member

    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise InvitationError("This invitation link is not valid.")
    with transaction.atomic():
        row = (Invitation.objects.select_for_update().select_related("account")
               .filter(token_hash=hash_token(token)).first())
        if row is None or row.accepted_at is not None or row.expires_at <= clock.now():
            raise InvitationError("This invitation is invalid, already used or expired. "
                                  "Ask for a new one.")
        _require_inviter_may_still_grant(row)
        # Still within the plan's members (a plan lowered since it was sent may hold
        # fewer): the members there are, and this one.
        limit = entitlements.limit_of(row.account_id, entitlements.MEMBERS)
        if limit is not None and Membership.objects.filter(
                account_id=row.account_id).count() + 1 > limit:
            raise InvitationError("The account cannot take more members on its current "
                                  "plan. Ask its owner to choose a larger plan, then use "
                                  "this link again.")
        existing = Member.objects.with_email(row.email).first()
        if member is not None:
            if canonical_email(member.email) != canonical_email(row.email):
                raise InvitationError("This invitation is for another email address. "
                                      "Sign in with the invited address to accept it.")
        elif existing is not None:
            raise InvitationError("You already have an Enclave login: sign in to accept.")
        else:
            member = identity_actions.do_create_member_from_invitation(
                row.email, password, account_name=row.account.name)
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
                               require_mfa: bool, actor: Principal, request=None) -> Account:
    """Members with ``ACCOUNT_MANAGE`` (owners) set the account's idle timeout (5–720 min)
    and whether MFA is required."""
    authorize(actor, P.ACCOUNT_MANAGE, account_id=account.pk)
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


def _require_grantable(actor: Principal, granted: frozenset, label: str) -> None:
    if not may_grant(actor.perms, granted):
        missing = sorted(p.value for p in granted - actor.perms)
        raise NotAuthorized(f"You cannot grant {label}: it holds permissions you do not "
                            f"have ({', '.join(missing)}).")


def _require_changeable(actor: Principal, target: Membership) -> None:
    """The actor may change or remove ``target``: not their own membership, and none of
    its current permissions beyond the actor's own."""
    if target.member_id == actor.member_id:
        raise NotAuthorized("You cannot change or remove your own membership.")
    if not may_grant(actor.perms, permissions_of(target)):
        raise NotAuthorized("You cannot change a member who holds permissions you do "
                            "not have.")


def _lock_owners(account_id: int) -> list[Membership]:
    return list(Membership.objects.select_for_update()
                .filter(account_id=account_id, role__in=OWNER_ROLES,
                        custom_role__isnull=True))


def _is_owner(membership: Membership) -> bool:
    return P.ACCOUNT_MANAGE in permissions_of(membership)


def _end_account_sessions(member_id: int, account_id: int, *, keep_session_id=None) -> None:
    """After commit: end the member's sessions in this account (their rights changed)."""
    from enclave.identity import actions as identity_actions

    transaction.on_commit(lambda: identity_actions.end_account_sessions(
        member_id, account_id, keep_session_id=keep_session_id))


def _own_session(actor: Principal, member_id: int):
    return actor.session_id if actor.member_id == member_id else None


def do_change_role(membership: Membership, role: str | Role, *, actor: Principal,
                   request=None) -> Membership:
    """Give ``membership`` a built-in role name or a custom ``Role`` of the same account.

    Needs ``TEAM_MANAGE``; the actor may neither change their own membership nor one
    holding (or a role granting) permissions beyond their own; the last owner cannot be
    demoted (TeamRuleError). The member's sessions in the account end after commit, so
    no browser keeps rights it no longer has. Re-authentication is the registry's web
    rule (``reauth``).
    """
    account_id = membership.account_id
    authorize(actor, P.TEAM_MANAGE, account_id=account_id)
    if isinstance(role, Role):
        if role.account_id != account_id:
            raise ValidationError({"role": "Choose one of the listed roles."})
        new_role, new_custom = "viewer", role
    elif role in BUILT_IN_ROLES:
        new_role, new_custom = role, None
    else:
        raise ValidationError({"role": "Choose one of the listed roles."})
    with transaction.atomic():
        owners = _lock_owners(account_id)
        locked = (Membership.objects.select_for_update(of=("self",)).select_related("custom_role")
                  .get(pk=membership.pk))
        _require_changeable(actor, locked)
        granted = (permissions_of(Membership(role=new_role, custom_role=new_custom)))
        _require_grantable(actor, granted, role_label_of(new_role, new_custom))
        if (locked.role, locked.custom_role_id) == (new_role, getattr(new_custom, "pk", None)):
            return locked
        if _is_owner(locked) and P.ACCOUNT_MANAGE not in granted and len(owners) <= 1:
            raise TeamRuleError("The account's last owner cannot be demoted. "
                                "Make someone else an owner first.")
        old = role_label(locked)
        locked.role, locked.custom_role = new_role, new_custom
        locked.save(update_fields=["role", "custom_role"])
        audit.record(AuditEventType.ROLE_CHANGED, actor=actor, account_id=account_id,
                     request=request, target_type="member", target_id=locked.member_id,
                     extra={"old": old, "new": role_label(locked)})
        _end_account_sessions(locked.member_id, account_id,
                              keep_session_id=_own_session(actor, locked.member_id))
    return locked


def do_remove_member(membership: Membership, *, actor: Principal, request=None) -> None:
    """Remove a member from the account. Needs ``TEAM_MANAGE``; not oneself, and not a
    member holding permissions beyond the actor's own; the last owner cannot be removed.
    Their sessions in the account end."""
    account_id = membership.account_id
    authorize(actor, P.TEAM_MANAGE, account_id=account_id)
    with transaction.atomic():
        owners = _lock_owners(account_id)
        locked = (Membership.objects.select_for_update(of=("self",)).select_related("custom_role")
                  .filter(pk=membership.pk).first())
        if locked is None:
            return
        _require_changeable(actor, locked)
        if _is_owner(locked) and len(owners) <= 1:
            raise TeamRuleError("The account's last owner cannot be removed.")
        locked.delete()
        audit.record(AuditEventType.MEMBER_REMOVED, actor=actor, account_id=account_id,
                     request=request, target_type="member", target_id=locked.member_id,
                     extra={"role": role_label(locked)})
        _end_account_sessions(locked.member_id, account_id)


def do_transfer_ownership(membership: Membership, *, actor: Principal,
                          request=None) -> Membership:
    """The acting owner makes ``membership`` an owner and becomes an admin. Needs
    ``ACCOUNT_MANAGE`` and every permission an owner holds."""
    account_id = membership.account_id
    authorize(actor, P.ACCOUNT_MANAGE, account_id=account_id)
    _require_grantable(actor, ROLE_PERMISSIONS["owner"], "owner")
    if membership.member_id == actor.member_id:
        raise TeamRuleError("You already own this account.")
    with transaction.atomic():
        target = Membership.objects.select_for_update().get(pk=membership.pk)
        me = Membership.objects.select_for_update().get(account_id=account_id,
                                                         member_id=actor.member_id)
        target.role, target.custom_role = "owner", None
        target.save(update_fields=["role", "custom_role"])
        me.role = "admin"
        me.save(update_fields=["role"])
        audit.record(AuditEventType.OWNERSHIP_TRANSFERRED, actor=actor, account_id=account_id,
                     request=request, target_type="member", target_id=target.member_id,
                     extra={"from_member": me.member_id})
        _end_account_sessions(me.member_id, account_id,
                              keep_session_id=_own_session(actor, me.member_id))
    return target


def do_save_custom_role(account: Account, name: str, permissions, *, actor: Principal,
                        request=None) -> Role:
    """Define (or redefine) a custom role from ``CUSTOM_ROLE_PERMISSIONS`` codenames.

    Needs ``ACCOUNT_MANAGE`` (owners), and only permissions the actor holds. Implied
    permissions are added (``people.write`` brings ``people.read``). Raises
    ValidationError for an empty/too long/built-in name or an unknown or owner-only
    permission. Members holding the role have their sessions in the account ended.
    """
    authorize(actor, P.ACCOUNT_MANAGE, account_id=account.pk)
    name = " ".join((name or "").split())
    if not name or len(name) > 40 or name.lower() in BUILT_IN_ROLES:
        raise ValidationError({"name": "Choose a name of 1–40 characters that is not a "
                                       "built-in role."})
    try:
        wanted = parse(permissions)
    except UnknownPermission as exc:
        raise ValidationError({"permissions": f"Unknown permission: {exc}."}) from None
    refused = sorted(p.value for p in wanted - CUSTOM_ROLE_PERMISSIONS)
    if refused:
        raise ValidationError({"permissions": "Not allowed in a custom role: "
                                              f"{', '.join(refused)}."})
    granted = close(wanted)
    _require_grantable(actor, granted, f"the role {name}")
    perms = sorted(p.value for p in granted)
    with transaction.atomic():
        role, _ = Role.objects.select_for_update().get_or_create(account=account, name=name)
        role.permissions = perms
        role.save(update_fields=["permissions"])
        audit.record(AuditEventType.CUSTOM_ROLE_SAVED, actor=actor, account_id=account.pk,
                     request=request, target_type="role", target_id=role.pk,
                     extra={"permissions": perms})
        for row in role.memberships.all():
            _end_account_sessions(row.member_id, account.pk,
                                  keep_session_id=_own_session(actor, row.member_id))
    return role


def role_label(membership) -> str:
    """The role name to show: the custom role's name or the built-in role."""
    custom = getattr(membership, "custom_role", None)
    return custom.name if custom is not None else membership.role


def role_label_of(role: str, custom: Role | None) -> str:
    return custom.name if custom is not None else role


def do_record_audit_export(account: Account, *, filters, actor: Principal,
                           request=None) -> None:
    """Audit an export of the audit log (needs ``AUDIT_READ``): which filter names —
    never their values."""
    authorize(actor, P.AUDIT_READ, account_id=account.pk)
    with transaction.atomic():
        audit.record(AuditEventType.AUDIT_LOG_EXPORTED, actor=actor, account_id=account.pk,
                     request=request, target_type="account", target_id=account.pk,
                     extra={"filters": list(filters)})
