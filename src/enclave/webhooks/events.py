"""What an endpoint can subscribe to, and the payload of each event.

Events come from the audit log: every audited change is recorded by one action inside
its transaction (``core.audit``), and :func:`on_audit` — listening there — turns the
kinds below into one delivery per subscribed endpoint in that same transaction, so a
change and its webhooks commit or roll back together (no change without its event, no
event for a change that did not happen). A delivery stores the event's ids only; the
body is made at each attempt (:func:`body`).

Payloads follow the Standard Webhooks shape: ``{"type", "timestamp", "data"}``. A
person's fields are the person as they are when the request is made, through the
visibility formatter (``people.render``) with the endpoint's permissions then — its role
ceiling, narrowed to what its creator holds (a creator who left: nothing) — so an
``analyst`` ceiling gets masked values, and a ``viewer`` ceiling gets ids only.

Ingest (native and the tracking spec) writes one audit row per batch naming the people it
created and changed: each becomes its own ``person.created`` / ``person.updated`` event.
Not yet emitted: people created or changed by a CSV import (its audit row holds counts
only), segment transitions, email delivery events, flow events.
"""

from __future__ import annotations

import json
import secrets

from enclave.core import clock
from enclave.core.models import AuditEventType

PERSON_CREATED, PERSON_UPDATED, PERSON_ERASED = ("person.created", "person.updated",
                                                 "person.erased")
SUBSCRIPTION_CHANGED = "subscription.changed"
TYPES: dict[str, str] = {
    PERSON_CREATED: "A person was created (web app, REST API, ingest, a subscribe form)",
    PERSON_UPDATED: "A person's fields or tags changed (web app, REST API, ingest)",
    PERSON_ERASED: "A person was erased (ids only)",
    SUBSCRIPTION_CHANGED: "A person's subscription to a topic changed or was confirmed",
}
_FROM_AUDIT: dict[int, str] = {
    AuditEventType.PERSON_CREATED: PERSON_CREATED,
    AuditEventType.PERSON_UPDATED: PERSON_UPDATED,
    AuditEventType.PERSON_ERASED: PERSON_ERASED,
    AuditEventType.SUBSCRIPTION_CHANGED: SUBSCRIPTION_CHANGED,
    AuditEventType.SUBSCRIPTION_CONFIRMED: SUBSCRIPTION_CHANGED,
}


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(16)}"


def endpoint_permissions(endpoint) -> frozenset:
    """What ``endpoint``'s payloads may show: its ceiling ∩ its creator's permissions in
    the account now."""
    from enclave.access.principal import permissions_of
    from enclave.access.scopes import ceiling_permissions
    from enclave.accounts.models import Membership

    membership = None if endpoint.created_by_id is None else Membership.objects.filter(
        member_id=endpoint.created_by_id, account_id=endpoint.account_id).first()
    return permissions_of(membership) & ceiling_permissions(endpoint.role_ceiling)


def _person_data(person_id: int, perms) -> dict | None:
    from enclave.people.access import field_definitions
    from enclave.people.models import Person
    from enclave.people.render import person_json, tags_of

    person = Person.objects.filter(pk=person_id).first()
    if person is None:
        return None
    return person_json(person, perms, field_definitions(person.account_id),
                       tags_of([person])[person.pk])


def event_of(kind: str, event) -> tuple[dict, int | None]:
    """What a delivery stores about a ``kind`` event made from audit row ``event`` — ids
    and names only, never a person's values — and whom it is about (None: an id-only
    notice that outlives the person)."""
    target = int(event.target_id)
    if kind == PERSON_ERASED:
        return {"id": target}, None
    if kind == SUBSCRIPTION_CHANGED:
        extra = event.extra_data
        return {"person": {"id": target}, "topic": {"id": extra.get("topic")},
                "status": extra.get("status"), "method": extra.get("method")}, target
    if kind == PERSON_UPDATED:
        return {"id": target, "changed": sorted(event.extra_data.get("fields", []))}, target
    return {"id": target}, target


def body(endpoint, delivery) -> bytes:
    """The request body of ``delivery`` now: a person's values are read and formatted at
    each attempt with the endpoint's permissions at that moment (its ceiling and its
    creator's role as they are now), so lowering a ceiling, a creator leaving, or a URL
    changed since the event never sends what the endpoint may no longer show — and no
    personal value is ever stored with a delivery."""
    stored = json.loads(delivery.payload)
    data = stored["data"]
    if stored["type"] in (PERSON_CREATED, PERSON_UPDATED):
        person = _person_data(data["id"], endpoint_permissions(endpoint)) or {
            "id": data["id"]}
        data = {**person, **({"changed": data["changed"]} if "changed" in data else {})}
    return json.dumps({"type": stored["type"], "timestamp": stored["timestamp"],
                       "data": data}, separators=(",", ":"), ensure_ascii=False).encode()


def on_audit(event) -> None:
    """``core.audit``'s listener: queue a delivery of the event to each active endpoint
    of the account subscribed to it, inside the audited action's transaction (one query
    to find them, one insert; nothing is read about the person here). An ingest batch's
    row gives one event per person it created or changed."""
    from enclave.webhooks.models import ACTIVE, WebhookEndpoint

    if event.account_id is None:
        return
    ingested = event.event_type == AuditEventType.EVENTS_INGESTED
    kind = _FROM_AUDIT.get(event.event_type)
    if ingested:
        extra = event.extra_data
        kinds = ({PERSON_CREATED} if extra.get("people_created") else set()) | (
            {PERSON_UPDATED} if extra.get("people_updated") else set())
    else:
        kinds = set() if kind is None else {kind}
    if not kinds:
        return
    endpoints = [(pk, kinds & set(subscribed)) for pk, subscribed in
                 WebhookEndpoint.objects.filter(account_id=event.account_id, state=ACTIVE)
                 .values_list("pk", "event_types") if kinds & set(subscribed)]
    if endpoints:
        _queue(endpoints, _ingested(event.extra_data) if ingested
               else [(kind, *event_of(kind, event))])


def _ingested(extra: dict) -> list[tuple[str, dict, int]]:
    changed = extra.get("people_changed", {})
    return ([(PERSON_CREATED, {"id": pk}, pk) for pk in extra.get("people_created", [])]
            + [(PERSON_UPDATED, {"id": pk, "changed": changed.get(str(pk), [])}, pk)
               for pk in extra.get("people_updated", [])])


def _queue(endpoints: list[tuple[int, set[str]]],
           events: list[tuple[str, dict, int | None]]) -> None:
    """Insert one pending delivery per (endpoint, event it subscribed to): one prepared
    statement run for every row (an ingest batch of 2,500 people with 20 endpoints is
    50,000 rows — no model instance is built for them)."""
    from django.db import connection

    from enclave.webhooks.models import PENDING, WebhookDelivery

    now = clock.now()
    stamp = now.isoformat().replace("+00:00", "Z")
    payloads = [(kind, json.dumps({"type": kind, "timestamp": stamp, "data": data},
                                  separators=(",", ":")), person_id)
                for kind, data, person_id in events]
    at = connection.ops.adapt_datetimefield_value(now)  # as the ORM stores it (SQLite: text)
    rows = [(pk, kind, new_message_id(), stored, person_id, at, PENDING, 0, at, "")
            for pk, subscribed in endpoints
            for kind, stored, person_id in payloads if kind in subscribed]
    table = WebhookDelivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (endpoint_id, event_type, message_id, payload, "  # noqa: S608 - table name from the model, values are parameters
            "person_id, created_at, state, attempts, next_attempt_at, last_detail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
