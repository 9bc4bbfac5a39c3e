"""Tenant-scoped reads for accounts (memberships, the audit log) and the member
principal.

``principal_for`` is the one place a member session's principal is built (the
``accounts.middleware.PrincipalMiddleware`` calls it on every request): the member's
membership in the session's account, with its custom role, in one query.
"""

from __future__ import annotations

import datetime as dt

from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize, for_member, for_membership
from enclave.accounts.models import Membership
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.validation import canonical_email
from enclave.people import visibility
from enclave.people.models import Person

AUDIT_FILTERS = {"event", "actor", "target_type", "target_id", "since", "until", "before"}


def membership_of(member, account_id: int | None) -> Membership | None:
    """The member's membership in ``account_id`` (with account and custom role), or None."""
    if account_id is None or member is None or not getattr(member, "is_authenticated", True):
        return None
    return (Membership.objects.select_related("custom_role", "account")
            .filter(member=member, account_id=account_id).first())


def principal_for(member, account_id: int | None, *, session_id: int | None = None
                  ) -> Principal:
    """``member`` acting in ``account_id``: their membership's permissions there, or a
    principal with no account permission when they are not a member of it."""
    membership = membership_of(member, account_id)
    if membership is None:
        return for_member(member, session_id=session_id)
    return for_membership(membership, member=member, session_id=session_id)


def access_membership(principal: Principal, membership_id) -> Membership:
    """A membership of the principal's account (needs ``TEAM_READ``); Http404 for another
    account's or a missing one."""
    authorize(principal, Permission.TEAM_READ)
    row = (Membership.objects.select_related("member", "custom_role")
           .filter(account_id=principal.account_id, pk=membership_id).first())
    if row is None:
        raise Http404("No such member.")
    return row


# --- the audit log ---

class BadFilter(Exception):
    """An audit filter that cannot be applied. ``str()`` is safe to show."""


def _date(value: str, name: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name} must be a date as YYYY-MM-DD.") from None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def audit_rows(ctx: Principal, params):
    """The account's audit rows, newest first, filtered (needs ``AUDIT_READ``); raises
    BadFilter."""
    authorize(ctx, Permission.AUDIT_READ)
    unknown = set(params) - AUDIT_FILTERS
    if unknown:
        raise BadFilter(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
    rows = AuditEvent.objects.filter(account_id=ctx.account_id).select_related("actor")
    if params.get("event"):
        try:
            rows = rows.filter(event_type=AuditEventType[params["event"].upper()])
        except KeyError:
            raise BadFilter("Unknown event type.") from None
    if params.get("actor"):
        rows = rows.filter(actor__email=canonical_email(params["actor"]))
    if params.get("target_type"):
        rows = rows.filter(target_type=params["target_type"][:64])
    if params.get("target_id"):
        rows = rows.filter(target_id=params["target_id"][:64])
    if params.get("since"):
        rows = rows.filter(created_at__gte=_date(params["since"], "since"))
    if params.get("until"):
        rows = rows.filter(created_at__lt=_date(params["until"], "until")
                           + dt.timedelta(days=1))
    if params.get("before"):
        if not params["before"].isdigit():
            raise BadFilter("before must be an event id.")
        rows = rows.filter(pk__lt=int(params["before"]))
    return rows.order_by("-pk")


def person_labels(ctx: Principal, events) -> dict[str, str]:
    """Person targets labelled through the visibility formatter (email as the role sees it)."""
    ids = {int(e.target_id) for e in events if e.target_type == "person"
           and e.target_id.isdigit()}
    people = Person.objects.filter(account_id=ctx.account_id, pk__in=ids)
    labels = {}
    for person in people:
        shown = visibility.display(person, "email", ctx.perms)
        labels[str(person.pk)] = shown.text if not shown.hidden and shown.text else ""
    return labels


def describe_event(event, labels) -> dict:
    target = f"{event.target_type}:{event.target_id}" if event.target_type else ""
    if event.target_type == "person" and labels.get(event.target_id):
        target += f" ({labels[event.target_id]})"
    try:
        name = AuditEventType(event.event_type).label
    except ValueError:
        name = str(event.event_type)
    return {"id": event.pk, "at": event.created_at, "event": name,
            "actor": event.actor.email if event.actor else "system", "target": target,
            "ip": event.ip or "", "trace_id": event.trace_id,
            "extra": "(scrubbed)" if event.scrubbed else event.extra_data}
