"""The one scope table: what each API-key scope lets a key do.

A key's principal holds the intersection of three sets, recomputed on every request
(:func:`enclave.access.principal.for_api_key`):

1. its creator's CURRENT permissions in the account, so a demoted creator narrows every
   key they made and a removed creator kills them;
2. its role ceiling: a built-in role (the visibility table reads permissions, so an
   ``analyst`` ceiling sees masked data);
3. the union of its scopes' permissions (this table).

Scope permission sets are deliberately NOT closed under ``permissions.IMPLIED``: a
write-only scope (``events:write``) grants ``PEOPLE_WRITE`` without ``PEOPLE_READ``, so
the visibility table hides every personal field from such a key and ingest treats it as
unable to see any value (docs/events.md, "existence"); ``messages:send`` grants
``EMAIL_MANAGE`` without ``EMAIL_READ`` (it sends, and reads back only its messages).

``account:read`` and ``topics:read`` map to no permission: they gate endpoints that need
none (the account's settings, its topics' names and consent texts). The
``api_keys:*`` scopes map to ``API_KEYS_READ`` / ``API_KEYS_MANAGE``, so those endpoints
work only while the key's creator still holds them and the ceiling includes them.
"""

from __future__ import annotations

from enclave.access.permissions import ROLE_PERMISSIONS, Permission, close

P = Permission

SCOPES: dict[str, frozenset[Permission]] = {
    "people:read": frozenset({P.PEOPLE_READ}),
    "people:write": close({P.PEOPLE_READ, P.PEOPLE_WRITE}),
    "people:export": close({P.PEOPLE_READ, P.PEOPLE_EXPORT}),
    "people:erase": close({P.PEOPLE_ERASE}),
    "events:write": frozenset({P.EVENTS_WRITE, P.PEOPLE_WRITE}),
    "segments:read": frozenset({P.SEGMENTS_READ}),
    "segments:write": close({P.SEGMENTS_MANAGE}),
    "topics:read": frozenset(),
    "topics:write": frozenset({P.TOPICS_MANAGE}),
    "email:read": frozenset({P.EMAIL_READ}),
    "email:write": close({P.EMAIL_MANAGE}),
    # Sending transactional messages only: EMAIL_MANAGE without EMAIL_READ (not closed),
    # and the scope opens no endpoint but /messages.
    "messages:send": frozenset({P.EMAIL_MANAGE}),
    "audit:read": frozenset({P.AUDIT_READ}),
    "account:read": frozenset(),
    "team:read": frozenset({P.TEAM_READ}),
    "api_keys:read": frozenset({P.API_KEYS_READ}),
    "api_keys:revoke": close({P.API_KEYS_MANAGE}),
    "webhooks:read": frozenset({P.WEBHOOKS_READ}),
    "webhooks:write": close({P.WEBHOOKS_MANAGE}),
}

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "people:read": "Read people (personal data as the role ceiling allows)",
    "people:write": "Create, update, upsert and archive people",
    "people:export": "Export people",
    "people:erase": "Erase people",
    "events:write": "Send events and identify calls to the ingest endpoint (write-only)",
    "segments:read": "Read segments, counts and members (members' fields need "
                     "people:read as well)",
    "segments:write": "Create, change and delete segments and lists (rules on people's "
                      "fields need people:read as well)",
    "topics:read": "Read the account's subscription topics",
    "topics:write": "Create and change subscription topics",
    "email:read": "Read email templates (and render previews: a person's fields need "
                  "people:read as well), sender domains and broadcasts",
    "email:write": "Create and change email templates and sender domains; draft, send and "
                   "cancel broadcasts",
    "messages:send": "Send transactional emails (a template to one person or address) "
                     "and read their state",
    "audit:read": "Read the audit log",
    "account:read": "Read the account's settings",
    "team:read": "Read the team and roles",
    "api_keys:read": "List the account's API keys (never their secrets)",
    "api_keys:revoke": "Revoke the account's API keys (the creator must still hold "
                       "api_keys.manage)",
    "webhooks:read": "Read webhook endpoints and their delivery log (never a secret)",
    "webhooks:write": "Create, change, disable and delete webhook endpoints (their "
                      "payloads show no more than the key may read), rotate their "
                      "secrets and replay deliveries",
}

# Ceilings are built-in role names; a key can never see more than this role would.
CEILINGS: tuple[str, ...] = tuple(ROLE_PERMISSIONS)


def scope_permissions(scopes) -> frozenset[Permission]:
    """Union of the permissions of ``scopes`` (unknown scopes grant nothing)."""
    out: set[Permission] = set()
    for scope in scopes:
        out |= SCOPES.get(scope, frozenset())
    return frozenset(out)


def ceiling_permissions(role: str) -> frozenset[Permission]:
    """The permissions of built-in role ``role`` (unknown: nothing)."""
    return ROLE_PERMISSIONS.get(role, frozenset())
