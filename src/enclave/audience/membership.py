"""Who is in a segment: evaluated live, and kept as rows (with entry/exit history).

Counts, member lists and previews always run the compiled rule (:func:`people_in`), so
they are exact at the moment they are asked. ``SegmentMember`` keeps the membership of
dynamic segments as rows, so that every change is recorded as a ``SegmentTransition``
(what flows trigger on). It is maintained incrementally: :func:`refresh_changed`
re-evaluates each dynamic segment only for the people changed or sending events since
its last refresh (watermarks overlap by :data:`OVERLAP`, so a transaction that committed
late is never missed; re-evaluating is idempotent). Rules that depend on "now" are also
re-evaluated in full by :func:`refresh_time_dependent`; a new or changed segment is
evaluated in full at its first refresh. Both run as periodic jobs
(``core.schedule``) and take "now" from the one clock.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q

from enclave.audience import rules
from enclave.audience.models import (
    DYNAMIC,
    ENTERED,
    EXITED,
    STATIC,
    Segment,
    SegmentMember,
    SegmentTransition,
)
from enclave.core import clock

log = logging.getLogger(__name__)
OVERLAP = dt.timedelta(minutes=5)
CHUNK = 5000
# Up to this many changed people the incremental job carries their ids; past it (a bulk
# import, a busy hour) each segment takes the difference in SQL instead.
CHANGED_AS_IDS = 100_000


def stored_rules_lookup(account_id: int):
    """``segment id → stored rules`` for the account (``rules._MISSING`` when absent)."""
    cache: dict[int, object] = {}

    def lookup(segment_id: int):
        if segment_id not in cache:
            row = Segment.objects.filter(account_id=account_id, pk=segment_id).values_list(
                "kind", "rules").first()
            cache[segment_id] = rules._MISSING if row is None else (
                None if row[0] == STATIC else row[1])
        return cache[segment_id]
    return lookup


def context(account_id: int, perms=frozenset(), *, now=None) -> rules.Context:
    from enclave.people.access import field_definitions

    return rules.Context(account_id=account_id, perms=frozenset(perms),
                         definitions=field_definitions(account_id),
                         segment_rules=stored_rules_lookup(account_id),
                         now=now or clock.now())


def people_in(rule: rules.Rule, ctx: rules.Context):
    """The account's unarchived people matching ``rule``: one query, tenant-filtered."""
    from enclave.people.models import Person

    query = rules.compile(rule, ctx)
    return ctx.people(Person.objects.filter(account_id=ctx.account_id,
                                            archived_at__isnull=True)).filter(query)


def condition(segment: Segment, ctx: rules.Context) -> Q:
    """Membership of ``segment`` now, as a condition on the account's people (a query
    made with ``ctx.people(...)``, for the aliases a dynamic segment's rule refers to):
    the rule itself, not a subquery of the people table within its own query."""
    if segment.kind == STATIC:
        return Q(pk__in=SegmentMember.objects.filter(segment=segment).values("person_id"))
    return rules.compile(rules.parse(segment.rules), ctx)


def members_of(segment: Segment, ctx: rules.Context):
    """The people in ``segment`` now: a list's rows, or a dynamic segment's rule live."""
    from enclave.people.models import Person

    inside = condition(segment, ctx)  # first: a rule's aliases are known once compiled
    return ctx.people(Person.objects.filter(account_id=segment.account_id,
                                            archived_at__isnull=True)).filter(inside)


def refresh(segment_id: int, *, restrict: Q | None = None, people: list[int] | None = None,
            now=None) -> tuple[int, int]:
    """Bring a dynamic segment's rows up to date — for everyone, for the people matching
    ``restrict``, or for the ids in ``people`` — and record each entry and exit. Returns
    (entered, exited). Idempotent; the segment row is locked, so two refreshes of one
    segment never interleave.

    With ``people`` the rule runs once per :data:`CHUNK` ids and the difference with the
    stored rows is taken in Python (what the incremental job uses); otherwise the
    database takes both differences."""
    now = now or clock.now()
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(pk=segment_id,
                                                             kind=DYNAMIC).first()
        if segment is None:
            return 0, 0
        try:
            rule = rules.parse(segment.rules)
        except rules.RuleError:
            # Only an anonymised restore stores an unusable tree (the registry blanks it).
            log.warning("segment rules unusable", extra={"segment_id": segment.pk})
            return 0, 0
        ctx = context(segment.account_id, now=now)
        matching = people_in(rule, ctx)
        stored = SegmentMember.objects.filter(segment=segment)
        if people is not None:
            entering, leaving = [], []
            for start in range(0, len(people), CHUNK):
                part = people[start:start + CHUNK]
                now_in = set(matching.filter(pk__in=part).values_list("pk", flat=True))
                was_in = set(stored.filter(person_id__in=part)
                             .values_list("person_id", flat=True))
                entering += sorted(now_in - was_in)
                leaving += sorted(was_in - now_in)
        else:
            if restrict is not None:
                matching = matching.filter(restrict)
                stored = stored.filter(person_id__in=_scope(segment.account_id, restrict))
            entering = list(matching.exclude(pk__in=SegmentMember.objects.filter(
                segment=segment).values("person_id")).values_list("pk", flat=True))
            leaving = list(stored.exclude(person_id__in=matching.values("pk"))
                           .values_list("person_id", flat=True))
        write_rows(segment, entering, leaving, now)
        Segment.objects.filter(pk=segment.pk).update(refreshed_at=now)
    return len(entering), len(leaving)


def _scope(account_id: int, restrict: Q):
    from enclave.people.models import Person

    return Person.objects.filter(account_id=account_id).filter(restrict).values("pk")


def write_rows(segment: Segment, entering: list[int], leaving: list[int], now) -> None:
    """Rows for people entering and leaving ``segment`` (inside the caller's
    transaction), each with its transition."""
    for start in range(0, len(entering), CHUNK):
        ids = entering[start:start + CHUNK]
        SegmentMember.objects.bulk_create(
            [SegmentMember(segment=segment, person_id=i, since=now) for i in ids],
            ignore_conflicts=True)
        SegmentTransition.objects.bulk_create(
            [SegmentTransition(segment=segment, person_id=i, kind=ENTERED, at=now)
             for i in ids])
    for start in range(0, len(leaving), CHUNK):
        ids = leaving[start:start + CHUNK]
        SegmentMember.objects.filter(segment=segment, person_id__in=ids).delete()
        SegmentTransition.objects.bulk_create(
            [SegmentTransition(segment=segment, person_id=i, kind=EXITED, at=now)
             for i in ids])


def copy_rows(segment: Segment, people, now) -> int:
    """Everyone in the ``people`` queryset enters the new, empty ``segment`` (inside the
    caller's transaction): membership rows and their "entered" transitions written by
    ``INSERT … SELECT`` in the database — a million people never pass through Python.
    Returns how many entered."""
    from django.db import connection

    sql, params = people.order_by().values("pk").query.sql_with_params()
    stamp = connection.ops.adapt_datetimefield_value(now)
    members = SegmentMember._meta.db_table
    transitions = SegmentTransition._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {members} (segment_id, person_id, since) "  # noqa: S608 — model tables; the rule's SQL is the ORM's, with parameters
                       f"SELECT %s, q.*, %s FROM ({sql}) AS q", [segment.pk, stamp, *params])
        entered = cursor.rowcount
        cursor.execute(f"INSERT INTO {transitions} (segment_id, person_id, kind, at) "  # noqa: S608 — model tables
                       f"SELECT segment_id, person_id, %s, since FROM {members} "
                       "WHERE segment_id = %s", [ENTERED, segment.pk])
    return entered


def changed_since(account_id: int, since) -> Q:
    """People of the account changed, or who sent an event, at or after ``since``."""
    from enclave.events.models import Event
    from enclave.people.models import Person

    return Q(pk__in=Person.objects.filter(account_id=account_id, updated_at__gte=since)
             .values("pk")) | Q(pk__in=Event.objects.filter(
                 account_id=account_id, received_at__gte=since, person__isnull=False)
             .values("person_id"))


def refresh_changed(*, now=None) -> int:
    """The incremental job: every dynamic segment re-evaluated for the people changed
    since its last refresh (in full when it was never refreshed). Who changed is asked
    once per account and watermark (segments refreshed together share one), as a list of
    ids up to :data:`CHANGED_AS_IDS`, beyond which each segment takes the difference in
    the database. Returns how many segments were refreshed."""
    from enclave.people.models import Person

    now = now or clock.now()
    done = 0
    changed: dict[tuple, list[int] | None] = {}
    for segment_id, account_id, refreshed_at in Segment.objects.filter(kind=DYNAMIC) \
            .order_by("pk").values_list("pk", "account_id", "refreshed_at"):
        if refreshed_at is None:
            done += _refresh_one(segment_id, now=now)
            continue
        since = refreshed_at - OVERLAP
        if (account_id, since) not in changed:
            ids = list(Person.objects.filter(account_id=account_id)
                       .filter(changed_since(account_id, since))
                       .values_list("pk", flat=True)[:CHANGED_AS_IDS + 1])
            changed[(account_id, since)] = ids if len(ids) <= CHANGED_AS_IDS else None
        ids = changed[(account_id, since)]
        done += _refresh_one(segment_id, now=now, **(
            {"people": ids} if ids is not None
            else {"restrict": changed_since(account_id, since)}))
    return done


def _refresh_one(segment_id: int, **kwargs) -> int:
    """One segment's refresh for a job: a failure is logged and the job goes on to the
    next segment (one account's broken segment never stops another's). 1 when done."""
    try:
        refresh(segment_id, **kwargs)
    except Exception:
        log.exception("segment refresh failed", extra={"segment_id": segment_id})
        return 0
    return 1


def refresh_time_dependent(*, now=None) -> int:
    """The periodic full re-evaluation of segments whose rules depend on "now"."""
    now = now or clock.now()
    ids = list(Segment.objects.filter(kind=DYNAMIC, time_dependent=True)
               .order_by("pk").values_list("pk", flat=True))
    return sum(_refresh_one(segment_id, now=now) for segment_id in ids)


def refresh_dependents(account_id: int, segment_id: int, person_ids, *, now=None) -> None:
    """After a list's rows change by hand or import: dynamic segments that refer to it
    (directly or through others) re-evaluated for those people."""
    person_ids = sorted(set(person_ids))
    for dependent in dependents(account_id, segment_id):
        refresh(dependent, people=person_ids, now=now)


def dependents(account_id: int, segment_id: int) -> list[int]:
    """Dynamic segments of the account that refer to ``segment_id``, transitively."""
    refers: dict[int, set[int]] = {}
    for pk, stored in Segment.objects.filter(account_id=account_id, kind=DYNAMIC) \
            .values_list("pk", "rules"):
        try:
            refers[pk] = rules.referenced_segments(rules.parse(stored))
        except rules.RuleError:
            refers[pk] = set()
    found: list[int] = []
    frontier = {segment_id}
    while frontier:
        nxt = {pk for pk, refs in refers.items() if refs & frontier and pk not in found}
        found.extend(sorted(nxt))
        frontier = nxt
    return found
