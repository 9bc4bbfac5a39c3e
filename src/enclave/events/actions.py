"""Ingest: store a validated batch of events in ONE transaction, or nothing.

``do_ingest_events`` is the only writer of ``Event``/``MessageId`` rows and of the people
that ingest creates or updates. Order inside the transaction:

1. claim the batch's client message ids (INSERT … ON CONFLICT on the unique
   (account, message_id) constraint) — ids already claimed in the last 24 hours are
   duplicates: acknowledged, not stored again, their identify not re-applied;
2. resolve person references and upsert the people of identify events in bulk (one
   locking query for the existing ones, one bulk insert, one bulk update, tags in bulk);
3. insert the events in one statement (COPY on PostgreSQL, executemany elsewhere);
4. write one audit row: counts, the key's public id and the ids of the people the batch
   created and changed (no personal values).

Authorization is the same as for every other write (``access.authorize``): storing
events needs ``EVENTS_WRITE``; identifying or referencing people needs ``PEOPLE_WRITE``.

Existence (docs/events.md): ingest never tells a principal whether a value it cannot see
in full exists. For each identity field (email, external id), a principal that sees it in
full (the visibility table) gets conflicts reported (422); one that cannot see it and
cannot observe people or the audit log (a write-only key) has a conflicting value left
unchanged and the batch accepted — identical answers whether the value exists or not; one
that cannot see it but could observe the effect (it reads the audit log) may not use that
field to identify people at all (422, decided by its permissions alone).

Any invalid event → :class:`~enclave.events.schema.EventErrors` and nothing is stored.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field

import msgspec
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from enclave.access.permissions import Permission
from enclave.access.principal import NotAuthorized, Principal, authorize
from enclave.billing import entitlements
from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.events import spec
from enclave.events.models import AnonymousId, Event, MessageId
from enclave.events.schema import AnyEvent, EventErrors, Identify, Track, in_utc
from enclave.people import actions as people_actions
from enclave.people import values, visibility
from enclave.people.models import FieldDefinition, Person, PersonTag, Tag, sealed_values

P = Permission
DEDUPE_WINDOW = dt.timedelta(hours=24)
# Fields an identify event carries at the top level, not inside "fields".
_TOP_LEVEL = ("email", "external_id", "tags")
_RETRIES = 3
_EVENT_COLUMNS = ("account_id", "person_id", "type", "name", "properties", "message_id",
                  "occurred_at", "received_at", "key_public_id")
# The tracking spec's rows carry two more (native ingest leaves them to their defaults).
_SPEC_COLUMNS = (*_EVENT_COLUMNS, "anonymous_id", "context")


class IngestConflict(Exception):
    """The batch kept colliding with concurrent writes to the same people (409)."""


@dataclass(frozen=True)
class IngestResult:
    """What happened to a batch. ``duplicates`` are positions in the batch."""

    received: int
    stored: int
    duplicates: tuple[int, ...]
    people_created: tuple[int, ...] = ()
    people_updated: tuple[int, ...] = ()


@dataclass
class _Plan:
    """Validated identify data, by position: (built-in fields, custom values, tags)."""

    cleaned: dict[int, tuple[dict, dict, list[str]]] = field(default_factory=dict)
    sealed_keys: frozenset[str] = frozenset()
    dropped: int = 0  # fields left out by a lenient clean (the tracking spec's traits)


IDENTITY_FIELDS = ("email", "external_id")
log = logging.getLogger(__name__)
REVEAL, SILENT, REFUSE = "reveal", "silent", "refuse"


def identity_rules(actor: Principal) -> dict[str, str]:
    """For each identity field: ``reveal`` conflicts (the actor sees the field in full),
    leave them ``silent`` (it cannot see it and cannot observe people or the audit log),
    or ``refuse`` the field as an identity key (it cannot see it but could observe the
    effect). Decided by the actor's permissions alone, never by the data."""
    observes = actor.can(P.PEOPLE_READ) or actor.can(P.AUDIT_READ)
    rules = {}
    for name in IDENTITY_FIELDS:
        if visibility.field_level(actor.perms, name) == visibility.VISIBLE:
            rules[name] = REVEAL
        else:
            rules[name] = REFUSE if observes else SILENT
    return rules


def _refused_fields(events, rules: dict[str, str], where) -> None:
    errors = {}
    for i, event in enumerate(events):
        for name in IDENTITY_FIELDS:
            if rules[name] == REFUSE and getattr(event, name):
                errors[_join(where(i), name)] = [
                    f"This key cannot see {name} in full, so it may not identify people by "
                    f"it (it could learn from the audit log whether a value exists). Use a "
                    "key whose role ceiling and scopes include people:read."]
    if errors:
        raise EventErrors(errors)


def do_ingest_events(account, events: tuple[AnyEvent, ...] | list[AnyEvent], *,
                     actor: Principal, request=None, batched: bool = True) -> IngestResult:
    """Store ``events`` (already decoded by ``schema.parse``) for ``account``.

    Returns an :class:`IngestResult` once the transaction has committed (so the caller
    may acknowledge durably). Raises EventErrors (422, nothing stored), NotAuthorized
    (403). Who may call: the ingest view, with the authenticated key's principal.
    ``batched`` says whether errors are located as ``batch.<i>.<field>`` or ``<field>``.
    A browser key (public by design) may not: it sends only through
    :func:`do_ingest_spec`, which holds it to its rules.
    """
    authorize(actor, P.EVENTS_WRITE, account_id=account.pk)
    if actor.browser is not None:
        raise NotAuthorized("A browser key sends page, track and identify calls only, to "
                            "/api/ingest/v1.")
    events = tuple(events)
    touches_people = any(isinstance(e, Identify) or e.email or e.external_id for e in events)
    if touches_people:
        authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    where = (lambda i: f"batch.{i}") if batched else (lambda i: "")
    rules = identity_rules(actor)
    _refused_fields(events, rules, where)
    plan = _clean_identify(account, events, where)
    return _retried(lambda: _ingest(account, events, plan, where, actor=actor, rules=rules,
                                    request=request))


def _retried(run):
    """``run()`` in one transaction; run again when it met an IntegrityError — another
    batch created the same person (email / external id) concurrently, so this batch
    updates that person instead. IngestConflict after the last try."""
    for attempt in range(_RETRIES):
        try:
            with transaction.atomic():
                return run()
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise IngestConflict(
                    "People in this batch were changed concurrently in a conflicting way "
                    "(the same email or external id); nothing was stored. Retry the batch."
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _ingest(account, events, plan: _Plan, where, *, actor: Principal, rules,
            request) -> IngestResult:
    now = clock.now()
    fresh = _claim_message_ids(account.pk, events, now)
    duplicates = tuple(i for i in range(len(events)) if i not in fresh)
    people, created, changed = _upsert_people(account, events, fresh, plan, now, where,
                                              rules=rules)
    public_id = actor.api_key_public_id
    rows = [
        (account.pk, people.get(i), "track" if isinstance(e, Track) else "identify",
         e.event if isinstance(e, Track) else "",
         e.properties if isinstance(e, Track) else {}, e.message_id or "",
         # When it happened: as sent, or now without a time or one outside the calendar
         # in UTC (schema.in_utc); only years 1 and 9999 can be, so only they are looked at.
         e.timestamp if e.timestamp is not None and 1 < e.timestamp.year < 9999
         else (e.timestamp and in_utc(e.timestamp)) or now, now, public_id)
        for i, e in enumerate(events) if i in fresh
    ]
    _insert_events(rows)
    left_out = len(events) - len(duplicates) - len(rows)  # past the plan's people limit
    counts = {"received": len(events), "stored": len(rows), "duplicates": len(duplicates),
              "left_out_for_plan": left_out,
              "track": sum(isinstance(e, Track) for e in events),
              "identify": sum(isinstance(e, Identify) for e in events),
              **_people_counts(created, changed), "api_key": public_id}
    audit.record(AuditEventType.EVENTS_INGESTED, actor=actor,
                 account_id=account.pk, request=request, target_type="api_key",
                 target_id=public_id, extra=counts)
    # Calls left out for the plan are answered as stored: a key that cannot see people
    # must not learn from the answer whether someone was held (see _PeopleLimit).
    return IngestResult(len(events), len(rows) + left_out, duplicates, created,
                        tuple(changed))


# --- the tracking spec (Segment / RudderStack HTTP API) -----------------------------------

def do_ingest_spec(account, parsed: spec.Parsed, *, actor: Principal,
                   request=None) -> IngestResult:
    """Store the tracking spec's calls ``parsed`` (``spec.read``) for ``account``, with
    native ingest's guarantees: one transaction, all or nothing, message ids
    deduplicated for 24 hours, the same people rules and existence rules, one audit row.

    On top: each call's anonymous id. A call that names a person (userId, or an
    identify's email trait) links its anonymous id — an alias its previousId — to that
    person (``AnonymousId``; the first link wins) and attaches the anonymous id's earlier
    events to them; a call with only an anonymous id is attached to the person it is
    linked to, or stored without one. Identify traits that name a field set it when the
    value fits (others are left out, counted in the audit row); the remaining traits are
    the stored event's properties. Raises EventErrors (nothing stored), NotAuthorized.
    """
    authorize(actor, P.EVENTS_WRITE, account_id=account.pk)
    browser = actor.browser
    if browser is not None:  # a website's public key: its narrower rules (spec.for_browser)
        try:
            parsed = spec.for_browser(parsed, require_consent=browser.require_consent,
                                      fill_new=browser.identify_mode == "fill_new")
        except spec.CallNotAllowed as exc:
            raise NotAuthorized(str(exc)) from None
    now = clock.now()
    # Traits only map onto custom fields in an identify: no query for other batches.
    custom_keys = frozenset(FieldDefinition.objects.filter(account_id=account.pk)
                            .values_list("key", flat=True)) if any(
        m.type == "identify" for m, _ in parsed.messages) else frozenset()
    items = spec.items(parsed, now, custom_keys)
    events = tuple(item.event for item in items)
    if any(isinstance(e, Identify) or e.email or e.external_id for e in events):
        authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    # Attaching anonymous calls to the people their ids are linked to writes about those
    # people: only for a principal that may (decided by its permissions, never by data).
    attach = actor.can(P.PEOPLE_WRITE)
    where = (lambda i: f"batch.{i}") if parsed.batched else (lambda i: "")
    rules = identity_rules(actor)
    try:
        _refused_fields(events, rules, where)
        plan = _clean_identify(account, events, where, lenient=True)
        return _retried(lambda: _ingest_spec(account, items, plan, where, now, actor=actor,
                                             rules=rules, request=request, attach=attach,
                                             browser=browser is not None))
    except EventErrors as exc:
        raise _spec_errors(exc.errors) from None


_SPEC_NAMES = (("external_id", "userId"), ("email", "traits.email"),
               ("fields.custom.", "traits."), ("fields.", "traits."))


def _spec_errors(errors: dict[str, list[str]]) -> EventErrors:
    """Native ingest's error locations in the spec's names (``batch.3.userId``)."""
    renamed = {}
    for key, messages in errors.items():
        head, tail = re.fullmatch(r"(batch\.\d+\.)?(.*)", key, re.S).groups()
        for native, ours in _SPEC_NAMES:
            if tail == native or (native.endswith(".") and tail.startswith(native)):
                tail = ours + tail[len(native):]
                break
        renamed[(head or "") + tail] = messages
    return EventErrors(renamed)


def _ingest_spec(account, items: list, plan: _Plan, where, now: dt.datetime, *,
                 actor: Principal, rules, request, attach: bool, browser: bool
                 ) -> IngestResult:
    events = tuple(item.event for item in items)
    _lock_anonymous_ids(account.pk, items)
    fresh = _claim_message_ids(account.pk, events, now)
    duplicates = tuple(i for i in range(len(events)) if i not in fresh)
    people, created, changed = _upsert_people(account, events, fresh, plan, now, where,
                                              rules=rules, only_new=browser)
    pairs: dict[str, int] = {}
    for i, item in enumerate(items):
        if i in fresh and item.link and i in people:
            pairs.setdefault(item.link, people[i])
    linked = _link_anonymous(account.pk, pairs, now)
    unnamed = {item.anonymous_id for i, item in enumerate(items)
               if i in fresh and i not in people and item.anonymous_id}
    known = _anonymous_people(account.pk, unnamed) if attach else {}
    public_id = actor.api_key_public_id
    rows = [
        (account.pk, people.get(i) or known.get(item.anonymous_id), item.type, item.name,
         item.properties, item.event.message_id or "", item.event.timestamp or now, now,
         public_id, item.anonymous_id, item.context)
        for i, item in enumerate(items) if i in fresh
    ]
    _insert_events(rows, _SPEC_COLUMNS)
    left_out = len(items) - len(duplicates) - len(rows)  # past the plan's people limit
    _stitch(account.pk, linked)
    # No count of links made or events attached: they depend on what other calls sent
    # for those anonymous ids, which the audit log's readers must not learn from it.
    calls = collections.Counter(item.type for item in items)
    counts = {"received": len(items), "stored": len(rows), "duplicates": len(duplicates),
              **{call: calls.get(call, 0) for call in spec.CALLS},
              **_people_counts(created, changed), "traits_left_out": plan.dropped,
              "left_out_for_plan": left_out, "api_key": public_id, "spec": True}
    audit.record(AuditEventType.EVENTS_INGESTED, actor=actor,
                 account_id=account.pk, request=request, target_type="api_key",
                 target_id=public_id, extra=counts)
    return IngestResult(len(items), len(rows) + left_out, duplicates, created,
                        tuple(changed))


def _people_counts(created, changed: dict[int, list[str]]) -> dict:
    """The audit row's people: ids created, ids changed and the names of the fields each
    changed (never a value) — what ``webhooks.events`` turns into person events."""
    return {"people_created": list(created), "people_updated": list(changed),
            "people_changed": {str(pk): names for pk, names in changed.items()}}


def _lock_anonymous_ids(account_id: int, items) -> None:
    """PostgreSQL: hold a transaction lock on each anonymous id the batch names, taken
    in one order (no deadlock between batches), before anything else. A batch linking
    an id and a batch sending that id's next page view then run one after the other, so
    the second sees the first's link: no event of a linked id stays without its person
    (which erasure, deleting by person, would miss). SQLite already writes one
    transaction at a time (``transaction_mode`` IMMEDIATE)."""
    if connection.vendor != "postgresql":
        return
    names = {item.anonymous_id for item in items if item.anonymous_id} | \
        {item.link for item in items if item.link}
    if not names:
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(f"{account_id}:{name}".encode(),
                                                  digest_size=8).digest(), "big",
                                  signed=True) for name in names})
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) "
                       "WITH ORDINALITY AS t(k, n)", [keys])


def _link_anonymous(account_id: int, pairs: dict[str, int], now: dt.datetime
                    ) -> dict[str, int]:
    """Link each anonymous id to its person unless it is linked already (the unique
    constraint decides, also between concurrent batches); the links made."""
    if not pairs:
        return {}
    table = AnonymousId._meta.db_table
    marks = ", ".join(["(%s, %s, %s, %s)"] * len(pairs))
    sql = (f"INSERT INTO {table} (account_id, anonymous_id, person_id, created_at) "  # noqa: S608 - table name from the model, values are parameters
           f"VALUES {marks} ON CONFLICT (account_id, anonymous_id) DO NOTHING "
           "RETURNING anonymous_id, person_id")
    params = [v for anon, person in sorted(pairs.items())
              for v in (account_id, anon, person, now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _anonymous_people(account_id: int, anonymous_ids: set[str]) -> dict[str, int]:
    """{anonymous id: person} of those linked."""
    if not anonymous_ids:
        return {}
    if connection.vendor == "postgresql":
        # One array parameter: the ORM's IN of a hundred placeholders cost more to build
        # and parse than the look-up itself (a batch of visitors names a hundred ids).
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT anonymous_id, person_id FROM {AnonymousId._meta.db_table} "  # noqa: S608 - table name from the model
                           "WHERE account_id = %s AND anonymous_id = ANY(%s)",
                           [account_id, list(anonymous_ids)])
            return dict(cursor.fetchall())
    return dict(AnonymousId.objects.filter(account_id=account_id,
                                           anonymous_id__in=anonymous_ids)
                .values_list("anonymous_id", "person_id"))


def _stitch(account_id: int, linked: dict[str, int]) -> None:
    """Attach the events each newly linked anonymous id sent before it had a person."""
    for anon, person in sorted(linked.items()):
        Event.objects.filter(account_id=account_id, anonymous_id=anon,
                             person__isnull=True).update(person_id=person)


# --- message ids ------------------------------------------------------------------------

def _claim_message_ids(account_id: int, events, now: dt.datetime) -> set[int]:
    """Positions to store: no message id, or a message id not seen in the last 24 hours.

    The unique (account, message_id) constraint decides under concurrency: a second
    transaction claiming the same id waits for the first and then sees the conflict.
    An id older than the window is re-claimed (its row's time is moved to now).
    """
    first: dict[str, int] = {}
    fresh = set()
    for i, event in enumerate(events):
        if event.message_id is None:
            fresh.add(i)
        elif event.message_id not in first:
            first[event.message_id] = i
    if not first:
        return fresh
    table = MessageId._meta.db_table
    upsert = (f"ON CONFLICT (account_id, message_id) DO UPDATE SET received_at = "
              f"excluded.received_at WHERE {table}.received_at < %s RETURNING message_id")
    cutoff = now - DEDUPE_WINDOW
    if connection.vendor == "postgresql":
        # One array parameter: the statement stays tiny whatever the batch size.
        sql = (f"INSERT INTO {table} (account_id, message_id, received_at) "
               f"SELECT %s, unnest(%s::text[]), %s {upsert}")
        params = [account_id, list(first), now, cutoff]
    else:
        sql = (f"INSERT INTO {table} (account_id, message_id, received_at) VALUES "  # noqa: S608 - table name from the model, values are parameters
               f"{', '.join(['(%s, %s, %s)'] * len(first))} {upsert}")
        params = [v for m in first for v in (account_id, m, now)] + [cutoff]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        claimed = {row[0] for row in cursor.fetchall()}
    return fresh | {first[m] for m in claimed}


# --- events -----------------------------------------------------------------------------

def _insert_events(rows: list[tuple], columns: tuple[str, ...] = _EVENT_COLUMNS) -> None:
    """Insert ``rows`` (values in ``columns`` order; JSON values as Python objects)."""
    if not rows:
        return
    table = Event._meta.db_table
    json_at = [i for i, name in enumerate(columns) if name in ("properties", "context")]
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            encode = msgspec.json.encode
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                # One way for every column set (native and spec rows): copy the row and
                # encode its JSON columns in place — faster than rebuilding the row
                # around them, or testing each value's position.
                for row in rows:
                    values = list(row)
                    for i in json_at:
                        values[i] = encode(values[i]).decode()
                    copy.write_row(values)
            return
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - fixed names
            [[json.dumps(v) if i in json_at else v for i, v in enumerate(row)]
             for row in rows])


# --- people -----------------------------------------------------------------------------

def _clean_identify(account, events, where, *, lenient: bool = False) -> _Plan:
    """Validate every identify event's fields against the built-in and custom field types
    (people's own rules, ``people.actions.clean_row``), before anything is written.
    EventErrors lists every bad field of every event. ``lenient`` (the tracking spec,
    whose traits are whatever a site sends): a field whose value does not fit is left
    out (counted in ``plan.dropped``) instead of refusing the batch; errors about the
    person's email / external id still refuse it."""
    plan = _Plan()
    identifies = [(i, e) for i, e in enumerate(events) if isinstance(e, Identify)]
    if not identifies:
        return plan
    definitions = {d.key: d for d in FieldDefinition.objects.filter(account_id=account.pk)}
    plan.sealed_keys = frozenset(k for k, d in definitions.items() if d.encrypt_at_rest)
    errors: dict[str, list[str]] = {}
    for i, event in identifies:
        builtin, custom, tags, bad = _clean_one(definitions, event)
        dropped = {k[7:] for k in bad if k.startswith("fields.")}
        if lenient and dropped:
            event = msgspec.structs.replace(event, fields={
                k: v for k, v in event.fields.items() if k not in dropped})
            builtin, custom, tags, bad = _clean_one(definitions, event)
            plan.dropped += len(dropped)
        for key, messages in bad.items():
            errors[_join(where(i), key)] = messages
        plan.cleaned[i] = (builtin, custom, tags)
    if errors:
        raise EventErrors(errors)
    return plan


def _clean_one(definitions: dict, event: Identify
               ) -> tuple[dict, dict, list[str], dict[str, list[str]]]:
    """(built-in fields, custom values, tags, errors by field) of one identify event."""
    errors: dict[str, list[str]] = {}
    misplaced = [k for k in event.fields if k in _TOP_LEVEL]
    for key in misplaced:
        errors[f"fields.{key}"] = [f"Send {key} at the top level of the event, not in "
                                   "fields."]
    data = {k: v for k, v in event.fields.items() if k not in _TOP_LEVEL}
    # Types as the document says, no coercion (5 is not a text, "5" not a number).
    mistyped = values.builtin_value_errors(data)
    mistyped.update(values.custom_value_errors(
        {k[7:]: v for k, v in data.items() if k.startswith("custom.")},
        definitions.values()))
    for key, messages in mistyped.items():
        errors[f"fields.{key}"] = messages
        del data[key]
    builtin, custom, _, bad = people_actions.clean_row(definitions, {
        **data, "email": event.email, "external_id": event.external_id})
    for key, messages in bad.items():
        if key == "tags" or key not in _TOP_LEVEL:
            key = f"fields.{key}"
        errors[key] = ["Unknown field (custom fields are sent as custom.<key>)."
                       if m == "Unknown field." else m for m in messages]
    # Absent email / external id leave the person's current value alone.
    for key in ("email", "external_id"):
        if not builtin.get(key):
            builtin.pop(key, None)
    tags = sorted({" ".join(t.split()) for t in event.tags} - {""})
    return builtin, custom, tags, errors


def _join(where: str, path: str) -> str:
    return f"{where}.{path}" if where else path


class _People:
    """The batch's people, indexed by email and external id as the batch changes them."""

    def __init__(self, existing: list[Person]) -> None:
        self.by_email = {p.email: p for p in existing if p.email}
        self.by_ext = {p.external_id: p for p in existing if p.external_id}
        self.existing = {p.pk: p for p in existing}
        self.new: list[Person] = []
        self.changed: dict[int, set[str]] = {}

    def find(self, email: str | None, external_id: str | None) -> Person | None:
        person = self.by_ext.get(external_id) if external_id else None
        if person is None and email:
            person = self.by_email.get(email)
        return person

    def add(self, account, email: str, external_id: str, now: dt.datetime) -> Person:
        person = Person(account=account, email=email or "", external_id=external_id or "",
                        created_at=now, updated_at=now)
        self.new.append(person)
        self.index(person)
        return person

    def index(self, person: Person) -> None:
        if person.email:
            self.by_email[person.email] = person
        if person.external_id:
            self.by_ext[person.external_id] = person

    def reindex(self, person: Person, before: dict[str, str]) -> None:
        """``person``'s email / external id changed: later events find it by the new
        values only (and a new person may take the old ones)."""
        for key, index in (("email", self.by_email), ("external_id", self.by_ext)):
            old = before[key]
            if old and old != getattr(person, key) and index.get(old) is person:
                del index[old]
        self.index(person)

    def mark(self, person: Person, names) -> None:
        if person.pk is not None and names:
            self.changed.setdefault(person.pk, set()).update(names)


class _PeopleLimit:
    """The plan's people limit inside one batch (``billing.entitlements``). A key that
    may see people (``reveal``/``refuse`` rules) gets the refusal — 403
    ``plan-limit-reached``, the whole batch stored nothing; a key that cannot (a
    write-only or browser key: ``silent``) must not learn from a refusal whether an
    address or user id is held, so a call that would create someone past the limit is
    left out — not stored, answered as stored, its message id kept (a retry is a
    duplicate) — and a log line counts them (the owners see the limit reached on their
    billing page). Nothing is kept about a person who was not created, so nothing escapes
    erasure or lands on someone else's timeline."""

    def __init__(self, account_id: int, *, quiet: bool, prepare: bool) -> None:
        self.account_id, self.quiet = account_id, quiet
        self.asked = prepare
        self.room = entitlements.room(account_id, entitlements.PEOPLE) if prepare else None
        self.dropped: set[int] = set()

    def fits(self, position: int, created: int) -> bool:
        if not self.asked:  # a person found unlocked was gone when locked: rare
            self.asked = True
            self.room = entitlements.room(self.account_id, entitlements.PEOPLE)
        if self.room is None or created < self.room:
            return True
        if not self.quiet:
            entitlements.check(self.account_id, entitlements.PEOPLE, created + 1)
            return True  # room made meanwhile (someone archived)
        if not self.dropped:
            log.warning("ingest over the plan's people limit: calls left out",
                        extra={"account": self.account_id})
        self.dropped.add(position)
        return False


def _may_create(account, wanted, emails: set[str], ext_ids: set[str], *,
                only_new: bool) -> bool:
    """Whether the batch may create someone (read without locks): only then is the
    account held for the plan's limit, so batches about people already held never
    queue behind each other on the account."""
    held = Person.objects.filter(account=account).filter(
        Q(email__in=emails) | Q(external_id__in=ext_ids)).values_list("email", "external_id")
    known_emails, known_ext = set(), set()
    for email, ext in held:
        known_emails.add(email)
        known_ext.add(ext)
    for _, event in wanted:
        ext = event.external_id.strip() if event.external_id else None
        email = event.email.strip().lower() if event.email else None
        if only_new and not isinstance(event, Identify):
            continue
        if not ((ext and ext in known_ext) or (not only_new and email in known_emails)):
            return True
    return False


def _upsert_people(account, events, fresh: set[int], plan: _Plan, now: dt.datetime,
                   where, *, rules: dict[str, str], only_new: bool = False
                   ) -> tuple[dict[int, int], tuple[int, ...], dict[int, list[str]]]:
    """Resolve each fresh event's person (creating it when absent) and apply identify
    data. Returns ({position: person id}, ids created, {id updated: fields changed}).

    ``only_new`` (browser keys): people are found by external id only, only an identify
    creates one (a page or track naming an unknown userId is stored without a person),
    and identify data is applied only to a person this batch creates — never to an
    existing one."""
    wanted = [(i, e) for i, e in enumerate(events) if i in fresh and (e.email or e.external_id)]
    if not wanted:
        return {}, (), {}
    emails = {e.email.strip().lower() for _, e in wanted if e.email}
    ext_ids = {e.external_id.strip() for _, e in wanted if e.external_id}
    for builtin, _, _ in plan.cleaned.values():
        if builtin.get("email"):
            emails.add(builtin["email"])
    # The plan's room for new people, asked before any person is locked (the account is
    # held first, in the order every action that adds people takes them) — and only
    # when billing is on and the batch may create someone.
    limit = _PeopleLimit(account.pk, quiet=SILENT in rules.values(),
                         prepare=entitlements.billing_on() and _may_create(
                             account, wanted, emails, ext_ids, only_new=only_new))
    existing = list(Person.objects.select_for_update().filter(account=account).filter(
        Q(email__in=emails) | Q(external_id__in=ext_ids)))
    people = _People(existing)
    resolved: dict[int, Person] = {}
    tag_pairs: list[tuple[Person, str]] = []
    errors: dict[str, list[str]] = {}
    for i, event in wanted:
        email = event.email.strip().lower() if event.email else None
        ext = event.external_id.strip() if event.external_id else None
        if only_new:
            person = people.find(None, ext)
            if person is None:
                if not isinstance(event, Identify):
                    continue  # a browser's page / track names no one new
                if not limit.fits(i, len(people.new)):
                    continue  # left out (see _PeopleLimit)
                person = people.add(account, None, ext, now)
        else:
            person = people.find(email, ext)
            if person is None:
                if not limit.fits(i, len(people.new)):
                    continue
                person = people.add(account, email, ext, now)
        resolved[i] = person
        if isinstance(event, Identify) and (not only_new or person in people.new):
            builtin, custom, tags = plan.cleaned[i]
            problem = _apply_identify(people, person, builtin, custom, plan.sealed_keys,
                                      rules=rules)
            if problem:
                errors[_join(where(i), problem[0])] = [problem[1]]
            tag_pairs += [(person, t) for t in tags]
    if errors:
        raise EventErrors(errors)
    fresh.difference_update(limit.dropped)  # left out: not stored (see _PeopleLimit)
    _write_people(account, people, now)
    _add_tags(account, tag_pairs)
    changed = {pk: sorted({"custom" if n == "sealed_custom" else n for n in names})
               for pk, names in sorted(people.changed.items())}
    return {i: p.pk for i, p in resolved.items()}, tuple(p.pk for p in people.new), changed


def _apply_identify(people: _People, person: Person, builtin: dict, custom: dict,
                    sealed_keys: frozenset[str], *, rules: dict[str, str]
                    ) -> tuple[str, str] | None:
    """Apply validated values to ``person`` in memory; (field, message) on a conflict.

    For a field whose rule is ``silent`` (:func:`identity_rules`) a conflicting value is
    not applied and not reported, so the answer never says another person holds it."""
    for key in ("email", "external_id"):
        value = builtin.get(key)
        if value and getattr(person, key) != value:
            holder = (people.by_email if key == "email" else people.by_ext).get(value)
            if holder is not None and holder is not person:
                if rules[key] != REVEAL:
                    builtin = {k: v for k, v in builtin.items() if k != key}
                    continue
                return key, ("Another person has this email address." if key == "email"
                             else "Another person has this external id.")
    before = {"email": person.email, "external_id": person.external_id}
    changed = [k for k, v in builtin.items() if getattr(person, k) != v]
    for key in changed:
        setattr(person, key, builtin[key])
    if changed:
        people.reindex(person, before)
    merged = dict(person.custom or {})
    sealed = sealed_values(person) if any(k in sealed_keys for k in custom) else None
    for key, value in custom.items():
        target = sealed if key in sealed_keys else merged
        if target.get(key) != value:
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
            changed.append("sealed_custom" if key in sealed_keys else "custom")
    person.custom = merged
    if sealed is not None and "sealed_custom" in changed:
        person.sealed_custom = json.dumps(sealed, sort_keys=True) if sealed else None
    people.mark(person, changed)
    return None


def _write_people(account, people: _People, now: dt.datetime) -> None:
    resealed = [people.existing[pk] for pk, names in people.changed.items()
                if "sealed_custom" in names]
    plain = {pk: names - {"sealed_custom"} for pk, names in people.changed.items()}
    fields = set().union(*plain.values()) if plain else set()
    targets = [people.existing[pk] for pk in people.changed]
    for person in targets:
        person.updated_at = now
    moved = fields & set(IDENTITY_FIELDS)
    if moved:
        # One UPDATE that moves an email / external id from one row to another meets the
        # unique index row by row, so it would fail whenever the taker comes first —
        # answering 409 to a valid batch, and telling a write-only key that a value it
        # named belongs to an existing person (only then is that person's row in this
        # UPDATE). Blank values are outside the unique indexes: clear the identity fields
        # of the rows being updated first; bulk_update then writes their final values.
        Person.objects.filter(pk__in=[p.pk for p in targets]).update(
            **dict.fromkeys(moved, ""))
    if fields:
        Person.objects.bulk_update(targets, sorted(fields | {"updated_at"}))
    sealed_field = Person._meta.get_field("sealed_custom")
    for person in resealed:
        # bulk_update cannot encrypt (it reads through the decrypting descriptor): seal
        # each changed value, bound to its row as save() would, and write it.
        text = person.__dict__.get("sealed_custom")
        Person.objects.filter(pk=person.pk).update(
            sealed_custom=None if text is None else sealed_field.seal(person, text),
            updated_at=now)
    if people.new:
        # Updates first, so a new person may take an email an existing one gave up.
        # pre_save runs per object, so "encrypt at rest" values are sealed here.
        Person.objects.bulk_create(people.new)


def _add_tags(account, pairs: list[tuple[Person, str]]) -> None:
    """Add (never remove) tags: ingest only adds, so concurrent sources cannot undo each
    other's tags."""
    if not pairs:
        return
    names = {name for _, name in pairs}
    Tag.objects.bulk_create([Tag(account=account, name=n) for n in names],
                            ignore_conflicts=True)
    ids = dict(Tag.objects.filter(account=account, name__in=names).values_list("name", "pk"))
    links = {(p.pk, ids[n]) for p, n in pairs}  # a person tagged twice in one batch: once
    PersonTag.objects.bulk_create(
        [PersonTag(person_id=p, tag_id=t) for p, t in sorted(links)], ignore_conflicts=True)


# --- housekeeping -----------------------------------------------------------------------

def do_purge_message_ids(*, actor=None, chunk: int = 50_000) -> int:
    """Delete message ids older than the 24-hour window (the hourly job). Returns how many.

    At full ingest rate an hour holds millions of ids, so they are deleted in chunks, each
    in its own short transaction (ingest keeps running); the audit row with the total is
    written with the last chunk. The ingest insert already ignores expired rows, so this
    only keeps the table small. A row re-claimed meanwhile has a new time and stays.
    """
    cutoff = clock.now() - DEDUPE_WINDOW
    total = 0
    while True:
        with transaction.atomic():
            ids = list(MessageId.objects.filter(received_at__lt=cutoff)
                       .values_list("pk", flat=True)[:chunk])
            deleted = MessageId.objects.filter(pk__in=ids, received_at__lt=cutoff).delete()[0] \
                if ids else 0
            total += deleted
            if len(ids) < chunk and total:
                audit.record(AuditEventType.EVENT_MESSAGE_IDS_PURGED, actor=actor,
                             extra={"message_ids": total})
        if len(ids) < chunk:
            return total
