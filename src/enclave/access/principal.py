"""The one principal: who is acting, in which account, with which permissions.

A :class:`Principal` is a member's session, an API key, or the system. Its permissions
are computed once, here, when it is built:

* a member session: the membership's role (built-in or custom) — :func:`for_membership`;
* an API key: the creator's CURRENT role ∩ the key's role ceiling ∩ its scopes —
  :func:`for_api_key`;
* the system (scheduled jobs, the operator's CLI): ``actor=None``, which holds no account
  permission — system actions check it with :func:`authorize_system`.

Every action takes ``*, actor: Principal`` and calls :func:`authorize`; the request is
only metadata for the audit row. So an API key's narrowed rights reach the action itself.
This module depends only on ``enclave.core``; apps pass their rows in (duck-typed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied

from enclave.access.permissions import Permission, role_permissions
from enclave.access.scopes import ceiling_permissions, scope_permissions

MEMBER, API_KEY = "member", "api_key"


@dataclass(frozen=True)
class BrowserRules:
    """What a browser key (a website's public tracking key) is held to, beyond its
    ``events:write`` scope: the origins it works from, whether each call must carry the
    visitor's consent, and what its identify may do to people (``link`` / ``fill_new``)."""

    origins: tuple[str, ...]
    require_consent: bool
    identify_mode: str


@dataclass(frozen=True)
class Principal:
    """Who is acting. Build one with the functions below, never by hand in an edge."""

    kind: str
    member: object = field(default=None, compare=False, repr=False)
    account: object = field(default=None, compare=False, repr=False)
    membership: object = field(default=None, compare=False, repr=False)
    perms: frozenset[Permission] = frozenset()
    member_id: int | None = None
    account_id: int | None = None
    # API keys only: the key (named in audit rows by its public id) and its scopes.
    api_key_public_id: str = ""
    scopes: frozenset[str] = frozenset()
    # Browser keys only (``None`` for every other principal).
    browser: BrowserRules | None = None
    # Member sessions only: the MemberSession row id.
    session_id: int | None = None

    @property
    def is_api_key(self) -> bool:
        return self.kind == API_KEY

    def can(self, permission: Permission) -> bool:
        """Whether this principal holds ``permission`` (a :class:`Permission` member)."""
        if not isinstance(permission, Permission):
            raise TypeError(f"permissions are Permission members, not {permission!r}")
        return permission in self.perms

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    # What audit rows record about the actor (core.audit reads this; no import needed).
    def audit_identity(self) -> tuple[object, dict]:
        extra = {"via_api_key": self.api_key_public_id} if self.is_api_key else {}
        return self.member, extra


def _membership_permissions(membership) -> frozenset[Permission]:
    if membership is None:
        return frozenset()
    custom = getattr(membership, "custom_role", None)
    return role_permissions(membership.role,
                            None if custom is None else custom.permissions)


def for_membership(membership, *, member=None, session_id: int | None = None) -> Principal:
    """A member acting in ``membership``'s account with that membership's role."""
    member = member if member is not None else membership.member
    return Principal(kind=MEMBER, member=member, account=membership.account,
                     membership=membership, perms=_membership_permissions(membership),
                     member_id=member.pk, account_id=membership.account_id,
                     session_id=session_id)


def for_member(member, *, session_id: int | None = None) -> Principal:
    """A signed-in member with no account chosen (or not a member of it): no permissions
    in any account; may still act on their own identity (:func:`authorize_self`)."""
    return Principal(kind=MEMBER, member=member, member_id=member.pk, session_id=session_id)


def for_api_key(key, membership, *, member=None) -> Principal:
    """An API key of ``key.account`` created by ``membership``'s member (``None``: the
    creator left, so the key holds nothing)."""
    creator = _membership_permissions(membership)
    perms = creator & ceiling_permissions(key.role_ceiling) & scope_permissions(key.scopes)
    member = member if member is not None else key.created_by
    return Principal(kind=API_KEY, member=member, account=key.account, membership=membership,
                     perms=perms, member_id=getattr(member, "pk", None),
                     account_id=key.account_id, api_key_public_id=key.public_id,
                     scopes=frozenset(key.scopes), browser=(
                         BrowserRules(tuple(key.allowed_origins), key.require_consent,
                                      key.identify_mode)
                         if getattr(key, "kind", "server") == "browser" else None))


def permissions_of(membership) -> frozenset[Permission]:
    """What ``membership`` grants (``None``: nothing) — for pages that compare roles."""
    return _membership_permissions(membership)


class NotAuthorized(PermissionDenied):
    """The principal lacks a permission, or the thing is in another account.

    ``str()`` is safe to show (``core.views`` and the API's problem documents do); it
    names the missing permission, never a value."""

    safe_to_show = True


def authorize(actor: Principal, permission: Permission, *, account_id: int | None = None
              ) -> None:
    """Raise :class:`NotAuthorized` unless ``actor`` holds ``permission`` — and, when
    ``account_id`` is given, acts in that account (the thing being changed must be in the
    principal's own account; an edge that loaded it wrongly still cannot change it)."""
    if not isinstance(actor, Principal):
        raise TypeError(f"actor must be a Principal, not {type(actor).__name__}")
    if account_id is not None and actor.account_id != account_id:
        raise NotAuthorized("That belongs to another account.")
    if not actor.can(permission):
        raise NotAuthorized(f"Your role does not include {permission.value}.")


def authorize_self(actor: Principal, member) -> None:
    """Raise :class:`NotAuthorized` unless ``actor`` is ``member``'s own session (a
    member changes their own password, sessions and MFA; API keys never do)."""
    if not isinstance(actor, Principal):
        raise TypeError(f"actor must be a Principal, not {type(actor).__name__}")
    if actor.kind != MEMBER or actor.member_id is None or actor.member_id != member.pk:
        raise NotAuthorized("Only the member themselves can do this.")


def authorize_system(actor: Principal | None) -> None:
    """System actions (jobs, the operator's CLI) take ``actor=None``; a member's or an
    API key's principal is refused."""
    if actor is not None:
        raise NotAuthorized("Only the system can do this.")
