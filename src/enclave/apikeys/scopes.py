"""The one scope table: what each API-key scope lets a key use.

A key's effective permissions (``auth.ApiPrincipal.perms``) are the intersection of
three sets, recomputed on every request:

1. the creator's CURRENT permissions in the account (``accounts.permissions``), so a
   demoted creator narrows every key they made and a removed creator kills them;
2. the key's role ceiling: a built-in role whose permissions bound personal-data
   visibility (the visibility table reads permissions, so ``analyst`` sees masked data);
3. the union of the permissions of the key's scopes (this table).

Scopes that map to no permission (``account:read``, ``events:write``, ``api_keys:*``)
gate endpoints that need no people permission; the endpoint checks the scope itself.
The ``api_keys:*`` endpoints also need the creator's CURRENT ``api_keys.manage`` and a
ceiling that includes it (owner or admin): see ``access.require_key_manager``.
Invariants (tests/apikeys/test_scopes.py): every permission named here is a codename of
the permission table, and each scope's permissions are closed under ``IMPLIED``.
"""

from __future__ import annotations

from enclave.accounts.permissions import ROLE_PERMISSIONS, close

SCOPES: dict[str, frozenset[str]] = {
    "people:read": frozenset({"people.read"}),
    "people:write": close({"people.read", "people.write"}),
    "people:export": close({"people.read", "people.export"}),
    "people:erase": close({"people.erase"}),
    "events:write": frozenset(),
    "audit:read": frozenset({"audit.read"}),
    "account:read": frozenset(),
    "team:read": frozenset({"team.read"}),
    "api_keys:read": frozenset(),
    "api_keys:revoke": frozenset(),
}

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "people:read": "Read people (personal data as the role ceiling allows)",
    "people:write": "Create, update, upsert and archive people",
    "people:export": "Export people",
    "people:erase": "Erase people",
    "events:write": "Send events and identify calls to the ingest endpoint (write-only)",
    "audit:read": "Read the audit log",
    "account:read": "Read the account's settings",
    "team:read": "Read the team and roles",
    "api_keys:read": "List the account's API keys (never their secrets)",
    "api_keys:revoke": "Revoke the account's API keys (the creator must still hold "
                       "api_keys.manage)",
}

# Ceilings are built-in role names; the key can never see more than this role would.
CEILINGS = tuple(ROLE_PERMISSIONS)


def scope_permissions(scopes) -> frozenset[str]:
    """Union of the permissions of ``scopes`` (unknown scopes grant nothing)."""
    out: set[str] = set()
    for scope in scopes:
        out |= SCOPES.get(scope, frozenset())
    return frozenset(out)


def ceiling_permissions(role: str) -> frozenset[str]:
    """The permissions of built-in role ``role`` (unknown: nothing)."""
    return ROLE_PERMISSIONS.get(role, frozenset())


def needed_permissions(scopes) -> frozenset[str]:
    """What a creator must hold for a key with ``scopes`` to be useful at all."""
    return scope_permissions(scopes)
