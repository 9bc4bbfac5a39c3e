"""Registry of every web endpoint under /app/people/, /app/team/ and /app/audit/.

The generated authorization tests (tests/people/test_authorization.py) read this list
together with the permission table and the visibility table; a URL pattern under those
prefixes without an entry here fails the suite.

``permission`` is what the endpoint needs (``None``: any member of the account);
``target`` says which id its URL takes (``person`` / ``membership``), for the
cross-tenant tests; ``shows_people`` marks pages that print person fields;
``reauth`` marks endpoints behind ``require_recent_auth``.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIXES = ("/app/people/", "/app/team/", "/app/audit/")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    permission: str | None
    target: str | None = None
    shows_people: bool = False
    reauth: bool = False


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("people-list", "GET", None, shows_people=True),
    Endpoint("people-export", "GET", "people.export", shows_people=True, reauth=True),
    Endpoint("people-fields", "GET", "people.read"),
    Endpoint("people-fields", "POST", "people.write"),
    Endpoint("people-import", "GET", "people.write"),
    Endpoint("people-import", "POST", "people.write"),
    Endpoint("people-import-confirm", "POST", "people.write"),
    Endpoint("people-create", "GET", "people.write"),
    Endpoint("people-create", "POST", "people.write"),
    Endpoint("people-detail", "GET", "people.read", "person", shows_people=True),
    Endpoint("people-edit", "GET", "people.write", "person", shows_people=True),
    Endpoint("people-edit", "POST", "people.write", "person"),
    Endpoint("people-reveal", "POST", "people.unmask", "person"),
    Endpoint("people-archive", "POST", "people.write", "person"),
    Endpoint("people-erase", "GET", "people.erase", "person", reauth=True),
    Endpoint("people-erase", "POST", "people.erase", "person", reauth=True),
    Endpoint("team", "GET", "team.read"),
    Endpoint("team-roles", "GET", "team.read"),
    Endpoint("team-roles", "POST", "account.manage", reauth=True),
    Endpoint("team-change-role", "POST", "team.manage", "membership", reauth=True),
    Endpoint("team-remove", "POST", "team.manage", "membership", reauth=True),
    Endpoint("team-transfer", "POST", "account.manage", "membership", reauth=True),
    Endpoint("audit-log", "GET", "audit.read", shows_people=True),
    Endpoint("audit-export", "GET", "audit.read", reauth=True, shows_people=True),
)

NAMES = frozenset(e.name for e in ENDPOINTS)
