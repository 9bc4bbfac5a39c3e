"""Registry of every endpoint under /api/v1/ — the one place that says what each needs.

``ApiView`` (``enclave.api.base``) reads its scope and permission from here (nothing is
typed twice), and the generated tests (tests/api/test_authorization.py) read this list
together with the permission table and the visibility table. A URL pattern under
``/api/v1/`` without an entry, or an entry without a route, fails the suite.

``scope`` is the API-key scope the request needs (``None``: no key at all — health and
the schema); ``permission`` the permission codename the key's principal must hold on top
of the scope (``None``: the scope alone); ``target`` which id its URL takes (``person`` /
``membership`` / ``tag``), for the cross-tenant tests; ``shows_people`` marks responses
that carry person fields.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/api/v1/"


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    scope: str | None
    permission: str | None = None
    target: str | None = None
    shows_people: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("api-health", "GET", None),
    Endpoint("api-openapi", "GET", None),
    Endpoint("api-people", "GET", "people:read", "people.read", shows_people=True),
    Endpoint("api-people", "POST", "people:write", "people.write", shows_people=True),
    Endpoint("api-people-upsert", "POST", "people:write", "people.write", shows_people=True),
    Endpoint("api-person", "GET", "people:read", "people.read", "person", shows_people=True),
    Endpoint("api-person", "PATCH", "people:write", "people.write", "person",
             shows_people=True),
    Endpoint("api-person", "DELETE", "people:erase", "people.erase", "person"),
    Endpoint("api-person-archive", "POST", "people:write", "people.write", "person",
             shows_people=True),
    Endpoint("api-person-tags", "GET", "people:read", "people.read", "person"),
    Endpoint("api-person-tags", "POST", "people:write", "people.write", "person"),
    Endpoint("api-person-tag", "DELETE", "people:write", "people.write", "person"),
    Endpoint("api-tags", "GET", "people:read", "people.read"),
    Endpoint("api-fields", "GET", "people:read", "people.read"),
    Endpoint("api-fields", "POST", "people:write", "people.write"),
    Endpoint("api-members", "GET", "team:read", "team.read"),
    Endpoint("api-member", "GET", "team:read", "team.read", "membership"),
    Endpoint("api-audit", "GET", "audit:read", "audit.read", shows_people=True),
    Endpoint("api-account", "GET", "account:read"),
    # API keys (enclave.apikeys.api): the creator must also still hold api_keys.manage
    # and the key's ceiling include it (apikeys.access.require_key_manager).
    Endpoint("api-keys", "GET", "api_keys:read"),
    Endpoint("api-key-revoke", "POST", "api_keys:revoke"),
    # Ingest (enclave.events): the scope alone; the action checks the creator may write
    # people when a batch touches them.
    Endpoint("api-events", "POST", "events:write"),
)

NAMES = frozenset(e.name for e in ENDPOINTS)
_BY_KEY = {(e.name, e.method): e for e in ENDPOINTS}


def lookup(name: str | None, method: str) -> Endpoint | None:
    """The entry for route ``name`` and ``method`` (HEAD counts as GET); None if absent."""
    method = "GET" if method == "HEAD" else method
    return _BY_KEY.get((name or "", method))


def methods(name: str) -> frozenset[str]:
    return frozenset(e.method for e in ENDPOINTS if e.name == name)
