"""The one permission table: permissions are enum members, roles are sets of them.

Everything that asks "may this principal do X?" goes through
:func:`enclave.access.principal.authorize` with a :class:`Permission` member, so an
unknown permission is an ``AttributeError`` at import time — never a silent ``False``.
Custom roles store codenames (the enum values) and are parsed with :func:`parse`, which
refuses unknown ones.

Invariants (asserted by tests/access/test_permissions.py):

1. ``owner`` holds every permission; each other built-in role is a strict subset.
2. Only ``owner`` holds ``BILLING_MANAGE`` and ``ACCOUNT_MANAGE`` (the account's
   settings, custom roles, transferring ownership). Owner-only rules are permissions —
   never a comparison with a role name: making, unmaking or removing an owner needs every
   permission an owner holds, by rule 6.
3. Implied permissions hold in every role, built-in or custom (:data:`IMPLIED`,
   :func:`close`): e.g. ``PEOPLE_WRITE`` implies ``PEOPLE_READ``.
4. ``user`` does marketing work; ``analyst`` reads people masked; ``viewer`` holds no
   ``people.*`` permission (aggregates only: segment names, rules with masked values,
   counts, email templates).
5. Custom roles choose from :data:`CUSTOM_ROLE_PERMISSIONS` (everything but the
   owner-only permissions).
6. A principal may grant a role (by role change or invitation) only when that role's
   permissions are a subset of its own, and may change or remove only a membership whose
   current permissions are a subset of its own (:func:`may_grant`); nobody changes their
   own membership through these actions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.StrEnum):
    """Dotted ``domain.verb`` codenames; the value is what custom roles store."""

    PEOPLE_READ = "people.read"
    PEOPLE_WRITE = "people.write"
    PEOPLE_EXPORT = "people.export"
    PEOPLE_UNMASK = "people.unmask"
    PEOPLE_ERASE = "people.erase"
    TEAM_READ = "team.read"
    TEAM_MANAGE = "team.manage"
    BILLING_MANAGE = "billing.manage"
    EVENTS_WRITE = "events.write"
    SEGMENTS_READ = "segments.read"
    SEGMENTS_MANAGE = "segments.manage"
    TOPICS_MANAGE = "topics.manage"
    EMAIL_READ = "email.read"
    EMAIL_MANAGE = "email.manage"
    API_KEYS_READ = "api_keys.read"
    API_KEYS_MANAGE = "api_keys.manage"
    AUDIT_READ = "audit.read"
    ACCOUNT_MANAGE = "account.manage"
    WEBHOOKS_READ = "webhooks.read"
    WEBHOOKS_MANAGE = "webhooks.manage"


P = Permission

DESCRIPTIONS: dict[Permission, str] = {
    P.PEOPLE_READ: "See people (personal data as the visibility table allows)",
    P.PEOPLE_WRITE: "Create, edit, import and archive people",
    P.PEOPLE_EXPORT: "Export people to CSV",
    P.PEOPLE_UNMASK: "Reveal a masked value, with a reason (audited)",
    P.PEOPLE_ERASE: "Erase a person and scrub them from the audit log",
    P.EVENTS_WRITE: "Send events through the ingest API",
    P.SEGMENTS_READ: "See segments, their rules and member counts (members' personal "
                     "data as the visibility table allows)",
    P.SEGMENTS_MANAGE: "Create, change and delete segments and add people to lists "
                       "(rules only on fields one sees in full)",
    P.TOPICS_MANAGE: "Create and change subscription topics and their consent text",
    P.EMAIL_READ: "See email templates (and preview them with a person's data as the "
                  "visibility table allows), sender domains and broadcasts",
    P.EMAIL_MANAGE: "Create and change email templates and sender domains; draft, send "
                    "and cancel broadcasts",
    P.TEAM_READ: "See the team and roles",
    P.TEAM_MANAGE: "Invite members, change roles and remove members (never beyond "
                   "one's own permissions)",
    P.BILLING_MANAGE: "Manage billing",
    P.API_KEYS_READ: "List the account's API keys (never their secrets)",
    P.API_KEYS_MANAGE: "Create, roll and revoke API keys",
    P.AUDIT_READ: "Read and export the audit log",
    P.ACCOUNT_MANAGE: "Change the account's settings and security, define roles, "
                      "transfer ownership",
    P.WEBHOOKS_READ: "See the account's webhook endpoints and their delivery log "
                     "(never a signing secret)",
    P.WEBHOOKS_MANAGE: "Create, change, disable and delete webhook endpoints (their "
                       "payloads never show more than one's own role), rotate their "
                       "secrets, replay deliveries",
}

IMPLIED: dict[Permission, frozenset[Permission]] = {
    P.PEOPLE_WRITE: frozenset({P.PEOPLE_READ}),
    P.PEOPLE_EXPORT: frozenset({P.PEOPLE_READ}),
    P.PEOPLE_UNMASK: frozenset({P.PEOPLE_READ}),
    P.PEOPLE_ERASE: frozenset({P.PEOPLE_READ, P.PEOPLE_WRITE}),
    P.TEAM_MANAGE: frozenset({P.TEAM_READ}),
    P.API_KEYS_MANAGE: frozenset({P.API_KEYS_READ}),
    P.SEGMENTS_MANAGE: frozenset({P.SEGMENTS_READ}),
    P.EMAIL_MANAGE: frozenset({P.EMAIL_READ}),
    P.WEBHOOKS_MANAGE: frozenset({P.WEBHOOKS_READ}),
}

ALL: frozenset[Permission] = frozenset(Permission)
OWNER_ONLY: frozenset[Permission] = frozenset({P.BILLING_MANAGE, P.ACCOUNT_MANAGE})
CUSTOM_ROLE_PERMISSIONS: frozenset[Permission] = ALL - OWNER_ONLY


def close(perms: Iterable[Permission]) -> frozenset[Permission]:
    """``perms`` plus everything they imply (transitively)."""
    out = set(perms)
    while True:
        more = set().union(*(IMPLIED.get(p, frozenset()) for p in out)) - out
        if not more:
            return frozenset(out)
        out |= more


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "owner": ALL,
    "admin": close(ALL - OWNER_ONLY),
    "user": close({P.PEOPLE_WRITE, P.PEOPLE_EXPORT, P.PEOPLE_UNMASK, P.EVENTS_WRITE,
                   P.SEGMENTS_MANAGE, P.TOPICS_MANAGE, P.EMAIL_MANAGE, P.TEAM_READ}),
    "analyst": close({P.PEOPLE_READ, P.PEOPLE_EXPORT, P.PEOPLE_UNMASK, P.SEGMENTS_READ,
                      P.EMAIL_READ, P.TEAM_READ}),
    "viewer": close({P.SEGMENTS_READ, P.EMAIL_READ, P.TEAM_READ}),
}
BUILT_IN_ROLES: tuple[str, ...] = tuple(ROLE_PERMISSIONS)


class UnknownPermission(ValueError):
    """A stored or submitted codename that is not a :class:`Permission`."""


def parse(codenames: Iterable[str]) -> frozenset[Permission]:
    """Codenames → permissions; :class:`UnknownPermission` names the first unknown one."""
    out = set()
    for codename in codenames:
        try:
            out.add(Permission(codename))
        except ValueError:
            raise UnknownPermission(codename) from None
    return frozenset(out)


def role_permissions(role: str, custom_codenames: Iterable[str] | None = None
                     ) -> frozenset[Permission]:
    """What a membership grants: its custom role's permissions (closed, never owner-only;
    unknown stored codenames grant nothing) when it has one, else built-in ``role``'s
    (an unknown role grants nothing)."""
    if custom_codenames is not None:
        known = {p for p in Permission if p.value in set(custom_codenames)}
        return close(known & CUSTOM_ROLE_PERMISSIONS)
    return ROLE_PERMISSIONS.get(role, frozenset())


def may_grant(granter: frozenset[Permission], granted: frozenset[Permission]) -> bool:
    """A principal holding ``granter`` may hand out a role holding ``granted`` only when
    it holds every one of those permissions itself (no escalation by delegation)."""
    return granted <= granter
