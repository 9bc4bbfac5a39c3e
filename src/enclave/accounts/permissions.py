"""The one permission table: dotted codenames and the built-in role → permissions matrix.

Everything that asks "may this member do X in this account?" calls :func:`has_perm`
(or reads :func:`permissions_of`); nothing compares role names.

Invariants (asserted by tests/accounts/test_permissions.py):

1. Every role's permissions are codenames from ``PERMISSIONS``.
2. ``owner`` has every permission; each other built-in role is a strict subset of owner.
3. Only ``owner`` has ``billing.manage`` (and only owners manage owners — an action rule).
4. Implied permissions hold in every role, built-in or custom: ``people.write``,
   ``people.export``, ``people.unmask`` and ``people.erase`` imply ``people.read``;
   ``team.manage`` implies ``team.read``. ``IMPLIED`` states them and
   :func:`close` adds them, so a custom role can never hold a manage without its read.
5. ``user`` does marketing work: people read/write/export/unmask, no team management,
   billing, API keys, audit or account settings.
6. ``analyst`` reads people (masked by the visibility table) and may reveal single
   values with a reason; ``viewer`` has no ``people.*`` permission (aggregates only).
7. Custom roles (``accounts.Role``) choose from ``CUSTOM_ROLE_PERMISSIONS`` — the same
   table minus ``billing.manage`` and ``account.manage``, which stay with owners.
"""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "people.read": "See people (personal data as the visibility table allows)",
    "people.write": "Create, edit, import and archive people",
    "people.export": "Export people to CSV",
    "people.unmask": "Reveal a masked value, with a reason (audited)",
    "people.erase": "Erase a person and scrub them from the audit log",
    "team.read": "See the team and roles",
    "team.manage": "Change roles, remove members, define custom roles",
    "billing.manage": "Manage billing",
    "api_keys.manage": "Create and revoke API keys",
    "audit.read": "Read and export the audit log",
    "account.manage": "Change the account's settings and security",
}

IMPLIED: dict[str, frozenset[str]] = {
    "people.write": frozenset({"people.read"}),
    "people.export": frozenset({"people.read"}),
    "people.unmask": frozenset({"people.read"}),
    "people.erase": frozenset({"people.read", "people.write"}),
    "team.manage": frozenset({"team.read"}),
}

OWNER_ONLY = frozenset({"billing.manage", "account.manage"})
CUSTOM_ROLE_PERMISSIONS = frozenset(PERMISSIONS) - OWNER_ONLY


def close(perms) -> frozenset[str]:
    """``perms`` plus everything they imply."""
    out = set(perms)
    for codename in list(out):
        out |= IMPLIED.get(codename, frozenset())
    return frozenset(out)


ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset(PERMISSIONS),
    "admin": close(frozenset(PERMISSIONS) - OWNER_ONLY),
    "user": close({"people.write", "people.export", "people.unmask", "team.read"}),
    "analyst": close({"people.read", "people.export", "people.unmask", "team.read"}),
    "viewer": close({"team.read"}),
}

BUILT_IN_ROLES = tuple(ROLE_PERMISSIONS)


def permissions_of(membership) -> frozenset[str]:
    """The permissions a membership grants (custom role when set, else its built-in role).

    ``None`` (not a member) grants nothing.
    """
    if membership is None:
        return frozenset()
    custom = getattr(membership, "custom_role", None)
    if custom is not None:
        return close(frozenset(custom.permissions) & CUSTOM_ROLE_PERMISSIONS)
    return ROLE_PERMISSIONS.get(membership.role, frozenset())


def has_perm(membership, codename: str) -> bool:
    """True when ``membership`` grants ``codename``; unknown codenames raise KeyError."""
    if codename not in PERMISSIONS:
        raise KeyError(codename)
    return codename in permissions_of(membership)


def role_label(membership) -> str:
    """The role name to show: the custom role's name or the built-in role."""
    custom = getattr(membership, "custom_role", None)
    return custom.name if custom is not None else membership.role
