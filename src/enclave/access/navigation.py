"""The web app's one navigation, as data: each area's label, path, the registry entry
its link opens and the permission it needs (``None``: any member of the account).

Every /app page shows the areas the member's principal may open
(``accounts.context.app_navigation``), in this order. tests/accounts/test_navigation.py
checks each item against the endpoint registry (the link opens a GET route whose entry
asks for exactly this permission), and each built-in role's menu.

Areas later issues add (flows, webhooks) get an item here when
their pages exist — never a link to a page that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.access.permissions import Permission

P = Permission


@dataclass(frozen=True)
class Area:
    label: str
    path: str
    endpoint: str
    permission: Permission | None = None


AREAS: tuple[Area, ...] = (
    Area("Home", "/app/", "app-home"),
    Area("People", "/app/people/", "people-list"),
    Area("Segments", "/app/segments/", "segments-list", P.SEGMENTS_READ),
    Area("Topics", "/app/topics/", "topics-list"),
    Area("Suppressions", "/app/suppressions/", "suppressions", P.PEOPLE_WRITE),
    Area("Broadcasts", "/app/broadcasts/", "broadcasts-list", P.EMAIL_READ),
    Area("Templates", "/app/templates/", "templates-list", P.EMAIL_READ),
    Area("Sender domains", "/app/senders/", "senders-list", P.EMAIL_READ),
    Area("Captured mail", "/app/captured/", "captured-list", P.PEOPLE_WRITE),
    Area("Team", "/app/team/", "team", P.TEAM_READ),
    Area("Audit log", "/app/audit/", "audit-log", P.AUDIT_READ),
    Area("API keys", "/app/api-keys/", "api-keys-list", P.API_KEYS_MANAGE),
    Area("Billing", "/app/billing/", "billing", P.BILLING_MANAGE),
    Area("Settings", "/app/account/security/", "account-security", P.ACCOUNT_MANAGE),
)


def areas_for(principal) -> list[Area]:
    """The areas ``principal`` may open (none without an account)."""
    if principal is None or principal.account_id is None:
        return []
    return [a for a in AREAS if a.permission is None or principal.can(a.permission)]
