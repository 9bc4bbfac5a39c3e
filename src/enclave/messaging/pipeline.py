"""The send pipeline: from the outbox to a mail server, at most once per message in all
but one case, and never lost.

A worker **claims** a batch of due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
workers never take the same row; SQLite has one writer) and marks them ``sending`` with
a lease, in its own short transaction; queued broadcasts share each batch equally
(``_fair_share``). For each message it then checks the person is
still eligible (subscribed to one of the broadcast's topics, not suppressed, not
archived, with an address — else ``skipped``), renders the whole batch in a limited
child process (``rendering.render_batch``), composes and DKIM-signs it
(``compose.message``), hands it to the transport, and records the outcome at once:
``sent``; ``deferred`` with a backoff (a 4xx, a dropped connection) until
``MAX_ATTEMPTS``, then ``failed``; ``failed`` for a 5xx — a 5xx for the recipient is a
bounce and suppresses the address.

Each claim has a token: before each hand-over the worker renews its lease on the row —
only if it still holds it and the broadcast is still queued — and records outcomes only
on rows it holds, so a slow worker and a worker that reclaimed an expired lease never
both send. A paused broadcast's rows are not claimed; a row a worker already holds when
its broadcast is paused goes back to the queue (cancelled: it is cancelled), the attempt
not counted. A sender domain with a throttle (``max_per_second``) paces every worker
through one shared slot time on its row (``_pace``): a claim skips the domain until its
next slot, a batch keeps no more of its rows than fit in ``MAX_PACE_WAIT`` (the rest go
back to the queue), and rows whose slot another worker pushed further away wait for it.
A worker that dies mid-batch leaves rows in ``sending``: their lease runs out after
``LEASE`` and the next claim takes them again (a row already tried ``MAX_ATTEMPTS`` times
fails instead). Only a message whose SMTP transaction was in flight at the moment of
death can go out twice — with the same Message-ID, fixed at the first attempt. A
broadcast is ``sent`` when none of its rows is left to do (checked after every batch and
whenever nothing is due, so one whose recipients were all erased finishes too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q

from enclave.core import clock
from enclave.messaging import (
    access,
    compose,
    footer,
    headers,
    mailto,
    rendering,
    tracking,
    transports,
)
from enclave.messaging.models import (
    OUTBOX_DEFERRED,
    OUTBOX_FAILED,
    OUTBOX_FINAL,
    OUTBOX_QUEUED,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_SKIPPED,
    QUEUED,
    SENT,
    Broadcast,
    OutboxMessage,
)

BATCH = 100
LEASE = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 6
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
           dt.timedelta(hours=2), dt.timedelta(hours=6))


# The throttle: a worker waits at most this long for its turn to send from a throttled
# domain (a batch keeps no more rows than fit); rows whose turn is further away go back
# to the queue until then.
MAX_PACE_WAIT = dt.timedelta(seconds=5)
sleep = time.sleep  # tests advance the frozen clock instead


def _due(now) -> Q:
    # A queued row may carry a not-before time too: the throttle gave it back for later.
    return (Q(state=OUTBOX_QUEUED, next_attempt_at__isnull=True)
            | Q(state__in=(OUTBOX_QUEUED, OUTBOX_DEFERRED), next_attempt_at__lte=now)
            | Q(state=OUTBOX_SENDING, claimed_at__lt=now - LEASE))


@dataclasses.dataclass(frozen=True)
class Claim:
    token: str
    ids: list[int]


def claim(limit: int = BATCH, *, now=None) -> Claim:
    """Up to ``limit`` due rows of queued broadcasts, now leased to the caller under a
    new token — none of a throttled domain whose next slot is still to come (other work
    goes first; ``next_throttled_slot`` says when to look again). Rows whose worker was
    lost after their last allowed attempt fail; those of a broadcast cancelled meanwhile
    are cancelled."""
    from enclave.messaging.models import CANCELLED, OUTBOX_CANCELLED

    now, token = now or clock.now(), secrets.token_hex(16)
    with transaction.atomic():
        lost = OutboxMessage.objects.filter(state=OUTBOX_SENDING, claimed_at__lt=now - LEASE)
        lost.filter(broadcast__state=CANCELLED).update(
            state=OUTBOX_CANCELLED, claimed_at=None, lease_id="")
        lost.filter(attempts__gte=MAX_ATTEMPTS).update(
            state=OUTBOX_FAILED, detail="gave up: worker lost", lease_id="")
        ids = _fair_share(limit, now)
        OutboxMessage.objects.filter(pk__in=ids).update(
            state=OUTBOX_SENDING, claimed_at=now, lease_id=token,
            attempts=F("attempts") + 1)
    return Claim(token, ids)


# A claim shares its batch between at most this many queued broadcasts (oldest queued
# first); the rest of the batch goes to the oldest rows of any of them.
MAX_SHARED = 20


def _fair_share(limit: int, now) -> list[int]:
    """The ids of up to ``limit`` due rows to claim (locked, skipping rows other workers
    hold): an equal share for each queued broadcast that has due rows, so a small
    broadcast queued behind a large one goes out alongside it rather than after it,
    then the oldest due rows of any broadcast for what is left."""
    due = (OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
           .filter(_due(now), broadcast__state=QUEUED)
           .filter(Q(broadcast__sender__next_slot_at__isnull=True)
                   | Q(broadcast__sender__next_slot_at__lte=now)))
    broadcasts = list(Broadcast.objects.filter(state=QUEUED).order_by("queued_at", "pk")
                      .values_list("pk", flat=True)[:MAX_SHARED])
    ids: list[int] = []
    if len(broadcasts) > 1:
        share = max(1, limit // len(broadcasts))
        for broadcast_id in broadcasts:
            ids += due.filter(broadcast_id=broadcast_id).order_by("pk") \
                .values_list("pk", flat=True)[:min(share, limit - len(ids))]
            if len(ids) >= limit:
                break
    if len(ids) < limit:
        ids += due.exclude(pk__in=ids).order_by("pk") \
            .values_list("pk", flat=True)[:limit - len(ids)]
    return ids


def next_throttled_slot(now=None):
    """The soonest next slot of a throttled domain that has rows due (None: none) —
    when a worker with nothing else to do should claim again."""
    from django.db.models import Min

    from enclave.messaging.models import SenderDomain

    now = now or clock.now()
    busy = OutboxMessage.objects.filter(_due(now), broadcast__state=QUEUED,
                                        broadcast__sender_id=OuterRef("pk"))
    return SenderDomain.objects.filter(next_slot_at__gt=now).filter(Exists(busy)) \
        .aggregate(soonest=Min("next_slot_at"))["soonest"]


def _holds(row, token: str, writes: Writes | None = None) -> bool:
    """Renew the lease on ``row`` (an outbox row, or a transactional message) if this
    claim still holds it and — for a broadcast's row — its broadcast is still queued (not
    paused or cancelled meanwhile); whether it does. Fixes the row's Message-ID at its
    first attempt in the same write, and takes the outcome ``writes`` holds back with
    it."""
    broadcast_row = isinstance(row, OutboxMessage)
    row.message_id = row.message_id or (
        f"{row.broadcast_id}.{row.pk}.{secrets.token_hex(8)}" if broadcast_row
        else f"t.{row.pk}.{secrets.token_hex(8)}")
    table = type(row)._meta.db_table
    still_queued = (f" AND EXISTS (SELECT 1 FROM {_BROADCAST} b WHERE "  # noqa: S608 — model table names
                    f"b.id = {table}.broadcast_id AND b.state = %s)") if broadcast_row else ""
    # Written out (two statements per message are the pipeline's hottest path): the
    # ORM's version joins through a subquery and costs more to build than to run.
    renewal = (f"UPDATE {table} SET claimed_at = %s, message_id = %s "  # noqa: S608 — model table names; values are parameters
               f"WHERE id = %s AND state = %s AND lease_id = %s{still_queued}",
               [_when(clock.now()), row.message_id, row.pk, OUTBOX_SENDING, token,
                *([QUEUED] if broadcast_row else [])])
    return (writes.with_pending(*renewal) if writes else _execute(*renewal)) == 1


class Writes:
    """A batch's outcome writes, each held back to go with the next lease renewal — on
    PostgreSQL in one statement (``WITH done AS (UPDATE …) UPDATE …``), one round trip
    and one commit instead of two. A held outcome never waits past the start of the
    next hand-over (the renewal comes first), a throttle's wait (``_pace`` flushes
    first) or the end of the batch (``send_batch`` flushes), so a worker killed at any
    moment leaves unrecorded only the message it was handing over — as without it."""

    def __init__(self) -> None:
        self.pending: tuple[str, list] | None = None

    def record(self, sql: str, params: list) -> None:
        self.flush()
        self.pending = (sql, params)

    def flush(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            _execute(*pending)

    def with_pending(self, sql: str, params: list) -> int:
        """Run ``sql`` (an ``UPDATE``) with the held write; ``sql``'s row count."""
        from django.db import connection

        if self.pending is None or connection.vendor != "postgresql":
            self.flush()  # SQLite has no UPDATE in a WITH: two statements
            return _execute(sql, params)
        (held, held_params), self.pending = self.pending, None
        return _execute(f"WITH done AS ({held} RETURNING 1) {sql}", [*held_params, *params])


_BROADCAST = Broadcast._meta.db_table
_FINISH_FIELDS = ("sent_at", "next_attempt_at")


def _when(value):
    from django.db import connection

    return connection.ops.adapt_datetimefield_value(value)


def _execute(sql: str, params: list) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _let_go(row: OutboxMessage, token: str, *, later=None) -> None:
    """Give back a row this claim holds but must not send now: to the queue while its
    broadcast is paused (or, with ``later``, until then — the throttle), as cancelled
    once its broadcast is. The attempt does not count."""
    from enclave.messaging.models import CANCELLED, OUTBOX_CANCELLED

    held = OutboxMessage.objects.filter(pk=row.pk, state=OUTBOX_SENDING, lease_id=token)
    held.filter(broadcast__state=CANCELLED).update(
        state=OUTBOX_CANCELLED, claimed_at=None, lease_id="")
    held.exclude(broadcast__state=CANCELLED).update(
        state=OUTBOX_QUEUED, claimed_at=None, lease_id="", next_attempt_at=later,
        attempts=F("attempts") - 1)




def _pace(sender_id: int, per_second: int, *, now):
    """Reserve the next slot of the domain's shared pacing (``SenderDomain.next_slot_at``,
    under a row lock, so every worker shares it): how long to wait for it, or the time
    it is free when that is more than ``MAX_PACE_WAIT`` away (nothing reserved)."""
    from enclave.messaging.models import SenderDomain

    with transaction.atomic():
        slot = SenderDomain.objects.select_for_update().values_list(
            "next_slot_at", flat=True).get(pk=sender_id)
        slot = max(slot or now, now)
        if slot - now > MAX_PACE_WAIT:
            return None, slot
        SenderDomain.objects.filter(pk=sender_id).update(
            next_slot_at=slot + dt.timedelta(seconds=1) / per_second)
    return slot - now, None


def _ineligible(rows: list[OutboxMessage]) -> dict[int, str]:
    """Why each row's person may no longer be mailed, by row id (rows that may be
    mailed are absent) — a few queries for the whole batch, not a few per row."""
    from enclave.audience import subscriptions
    from enclave.audience.models import SUBSCRIBED, Subscription

    reasons: dict[int, str] = {}
    by_broadcast: dict[int, list[OutboxMessage]] = {}
    for row in rows:
        if row.person.archived_at is not None or not row.person.email:
            reasons[row.pk] = "no longer a recipient"
        else:
            by_broadcast.setdefault(row.broadcast_id, []).append(row)
    for group in by_broadcast.values():
        broadcast = group[0].broadcast
        subscribed = set(Subscription.objects.filter(
            person_id__in=[row.person_id for row in group], topic_id__in=broadcast.topics,
            status=SUBSCRIBED).values_list("person_id", flat=True))
        suppressed = subscriptions.suppressed_among(
            broadcast.account_id, [row.person.email for row in group])
        for row in group:
            if row.person_id not in subscribed:
                reasons[row.pk] = "unsubscribed"
            elif row.person.email in suppressed:
                reasons[row.pk] = "suppressed"
    return reasons


def _finish(row, state: str, detail: str, writes: Writes | None = None, **fields) -> None:
    # Only on a row this claim still holds (``row.lease_id``). A model may name columns
    # to clear once the row is final (``CLEARED_WHEN_FINAL``: what only sending needed).
    # With ``writes``, held back to go with the next renewal.
    if set(fields) - set(_FINISH_FIELDS):
        raise TypeError(f"_finish sets only {_FINISH_FIELDS}")
    extra = "".join(f", {name} = %s" for name in fields)
    if state in OUTBOX_FINAL:
        extra += "".join(f", {name} = NULL"
                         for name in getattr(type(row), "CLEARED_WHEN_FINAL", ()))
    (writes.record if writes else _execute)(
        f"UPDATE {type(row)._meta.db_table} SET state = %s, detail = %s, "  # noqa: S608 — model table and column names; values are parameters
        f"claimed_at = NULL, lease_id = ''{extra} WHERE id = %s AND state = %s "
        f"AND lease_id = %s",
        [state, detail[:40], *(_when(v) for v in fields.values()), row.pk,
         OUTBOX_SENDING, row.lease_id])


def _deferred(row, detail: str, *, now, writes: Writes | None = None) -> None:
    if row.attempts >= MAX_ATTEMPTS:
        _finish(row, OUTBOX_FAILED, f"gave up: {detail}", writes)
        return
    wait = BACKOFF[min(row.attempts, len(BACKOFF)) - 1]
    _finish(row, OUTBOX_DEFERRED, detail, writes, next_attempt_at=now + wait)


def _context(row: OutboxMessage, definitions) -> dict:
    from enclave.access.permissions import ALL
    from enclave.audience.subscriptions import preferences_url

    person = row.person
    return {"person": rendering.person_context(person, ALL, definitions),
            "account": {"name": row.broadcast.account.name},
            "unsubscribe_url": headers.unsubscribe_url(person, row.broadcast.topics),
            "preferences_url": preferences_url(person)}


def send_batch(claimed: Claim, transport, *, now=None) -> dict[str, int]:
    """Send the ``claimed`` rows through ``transport``; how many ended in each state."""
    from enclave.people.access import field_definitions

    now = now or clock.now()
    rows = list(OutboxMessage.objects.filter(pk__in=claimed.ids, state=OUTBOX_SENDING,
                                             lease_id=claimed.token)
                .select_related("person", "broadcast__template", "broadcast__sender",
                                "broadcast__account").order_by("pk"))
    counts: dict[str, int] = {}

    def done(state: str) -> None:
        counts[state] = counts.get(state, 0) + 1

    if len(rows) < len(claimed.ids):  # held rows the join dropped: their person is gone
        from enclave.people.models import Person

        orphans = OutboxMessage.objects.filter(
            pk__in=set(claimed.ids) - {row.pk for row in rows}, state=OUTBOX_SENDING,
            lease_id=claimed.token).exclude(Exists(Person.objects.filter(
                pk=OuterRef("person_id")))).update(
            state=OUTBOX_SKIPPED, detail="no longer a recipient", claimed_at=None,
            lease_id="")
        if orphans:
            counts[OUTBOX_SKIPPED] = orphans

    ready, reasons = [], _ineligible(rows)
    for row in rows:
        reason = reasons.get(row.pk)
        if reason:
            _finish(row, OUTBOX_SKIPPED, reason)
            done(OUTBOX_SKIPPED)
        else:
            ready.append(row)
    by_broadcast: dict[int, list[OutboxMessage]] = {}
    for row in ready:
        by_broadcast.setdefault(row.broadcast_id, []).append(row)
    for group in by_broadcast.values():
        broadcast = group[0].broadcast
        key = access.signing_key(broadcast.sender)
        if key is None:  # the domain lost its verification: wait, do not send unsigned
            for row in group:
                _deferred(row, "sender domain unverified", now=now)
                done(OUTBOX_DEFERRED)
            continue
        per_second = broadcast.sender.max_per_second
        if per_second:  # no more than fits in the pacing window; the rest go back
            fits = max(1, int(per_second * MAX_PACE_WAIT.total_seconds()))
            for later in group[fits:]:
                _let_go(later, claimed.token)
            group = group[:fits]
        definitions = field_definitions(broadcast.account_id)
        contexts = [_context(row, definitions) for row in group]
        rendered = _render(broadcast.template, contexts)
        writes = Writes()
        try:
            for n, (row, context, out) in enumerate(zip(group, contexts, rendered,
                                                         strict=True)):
                if per_second:
                    writes.flush()  # nothing held back while waiting for a turn
                    wait, free_at = _pace(broadcast.sender_id, per_second,
                                          now=clock.now())
                    if wait is None:  # the domain's turn is far off: the rest wait
                        for later in group[n:]:
                            _let_go(later, claimed.token, later=free_at)
                        break
                    if wait:
                        sleep(wait.total_seconds())
                if not _holds(row, claimed.token, writes):
                    _let_go(row, claimed.token)  # paused or cancelled meanwhile
                    continue
                try:
                    done(_send_one(row, context, out, key, transport, now=now,
                                   writes=writes))
                except Exception:  # noqa: BLE001 — one row's trouble never stops the batch
                    _deferred(row, "internal error", now=now, writes=writes)
                    done(OUTBOX_DEFERRED)
        finally:
            writes.flush()
    close_finished({row.broadcast_id for row in rows})
    return counts


RENDER_LIMITS = "render limits"


def _render(template, contexts: list[dict]) -> list:
    """Each context's rendering, None where it failed; a batch that runs out of its
    limits is split in halves until the recipients that do not fit are alone (and fail
    with ``RENDER_LIMITS``)."""
    try:
        return rendering.render_batch(template.subject, template.compiled, contexts)
    except rendering.TemplateError:
        if len(contexts) == 1:
            return [RENDER_LIMITS]
        half = len(contexts) // 2
        return _render(template, contexts[:half]) + _render(template, contexts[half:])


def _send_one(row, context, out, key, transport, *, now, writes: Writes) -> str:
    if out is None or out == RENDER_LIMITS:
        _finish(row, OUTBOX_FAILED, out or "template failed to render", writes)
        return OUTBOX_FAILED
    broadcast = row.broadcast
    out = footer.add(out, broadcast.account.postal_address)
    if broadcast.track_opens or broadcast.track_clicks:
        out = dataclasses.replace(out, html=tracking.add(
            out.html, broadcast_id=broadcast.pk, row_id=row.pk,
            links=broadcast.tracked_links, opens=broadcast.track_opens,
            clicks=broadcast.track_clicks, version=broadcast.tracking_key_version))
    try:
        envelope, raw = compose.message(
            domain=broadcast.sender.domain, from_local=broadcast.from_local,
            from_name=broadcast.from_name, to=row.person.email, rendered=out,
            message_id=row.message_id, unsubscribe_url=context["unsubscribe_url"],
            unsubscribe_mailto=mailto.address(row.person, broadcast.pk),
            feedback_id=f"{broadcast.pk}:{broadcast.account_id}:broadcast:enclave",
            selector=key[0], private_key=key[1], now=now)
    except compose.Unsendable as exc:
        _finish(row, OUTBOX_FAILED, str(exc), writes)
        return OUTBOX_FAILED
    envelope = dataclasses.replace(envelope, account_id=broadcast.account_id,
                                   broadcast_id=broadcast.pk, person_id=row.person_id,
                                   ref=f"b{row.pk}")
    return hand_over(row, envelope, raw, transport, account=broadcast.account,
                     address=row.person.email, now=now, writes=writes)


def hand_over(row, envelope, raw: bytes, transport, *, account, address: str, now,
              writes: Writes | None = None) -> str:
    """Send one composed message and record the outcome on ``row`` (which this claim
    holds) — at once, or with ``writes`` along with the next renewal; the state it ended
    in. A 5xx for the recipient suppresses ``address`` (as stored: the envelope has its
    domain in IDNA form)."""
    from enclave.audience import subscriptions

    outcome = transport.send(envelope, raw)
    if outcome.kind == transports.SENT:
        _finish(row, OUTBOX_SENT, outcome.detail, writes, sent_at=clock.now())
        return OUTBOX_SENT
    if outcome.kind == transports.DEFERRED:
        _deferred(row, outcome.detail, now=now, writes=writes)
        return OUTBOX_DEFERRED
    _finish(row, OUTBOX_FAILED, outcome.detail, writes)
    if outcome.bounce:
        subscriptions.do_suppress_address(account, address, reason="bounce", actor=None)
    return OUTBOX_FAILED


def close_finished(broadcast_ids=None) -> int:
    """Queued broadcasts (those in ``broadcast_ids``; None: all of them — when nothing
    was due) with nothing left to do become ``sent``; how many."""
    queued = Broadcast.objects.filter(state=QUEUED)
    if broadcast_ids is not None:
        queued = queued.filter(pk__in=broadcast_ids)
    # EXISTS stops at the first row left to do: this runs after every batch, and a
    # NOT IN would read every unfinished row of a large broadcast each time.
    unfinished = OutboxMessage.objects.filter(broadcast_id=OuterRef("pk")) \
        .exclude(state__in=OUTBOX_FINAL)
    return queued.exclude(Exists(unfinished)).update(state=SENT, finished_at=clock.now())


def run_once(transport, *, limit: int = BATCH, now=None) -> dict[str, int]:
    """Claim one batch and send it; the counts (empty when nothing was due)."""
    claimed = claim(limit, now=now)
    if not claimed.ids:
        close_finished()
        return {}
    return send_batch(claimed, transport, now=now)


def progress(broadcast: Broadcast, *, now=None) -> dict[str, int]:
    """How many of the broadcast's rows are in each state (``waiting``: the queued ones
    whose recipient's local time has not come yet), and how many recipients a provider
    later reported bounced (``DeliveryEvent``: a hard bounce or a refusal), and opened or
    clicked (its own tracking, when on)."""
    from django.db.models import Count

    from enclave.messaging.models import DeliveryEvent

    rows = OutboxMessage.objects.filter(broadcast=broadcast)
    found = dict(rows.values_list("state").annotate(n=Count("pk")).order_by("state"))
    counts = {state: found.get(state, 0) for state in (
        OUTBOX_QUEUED, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_DEFERRED, OUTBOX_FAILED,
        OUTBOX_SKIPPED)}
    counts["waiting"] = rows.filter(
        state=OUTBOX_QUEUED, next_attempt_at__gt=now or clock.now()).count() \
        if broadcast.local_at is not None and counts[OUTBOX_QUEUED] else 0
    for name, kinds in (("bounced", ("bounced", "rejected")), ("opened", ("opened",)),
                        ("clicked", ("clicked",))):
        counts[name] = DeliveryEvent.objects.filter(broadcast=broadcast, kind__in=kinds) \
            .values("person_id").distinct().count()
    return counts
