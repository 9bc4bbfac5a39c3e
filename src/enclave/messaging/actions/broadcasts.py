"""Broadcast state changes: draft one, queue it (its recipients snapshotted into the
outbox in one transaction), cancel it, delete a draft. Audit rows name the broadcast by
id and say how many recipients — never who.

Who receives a broadcast (:func:`recipients`): the account's unarchived people with an
address who are *subscribed* (not pending confirmation, not unsubscribed) to at least one
of its topics and, when it names segments, in at least one of them. Suppression is
checked again by the send pipeline for every message just before it is handed over, so
an address suppressed after queuing is still never mailed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize, authorize_system
from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.core.validation import MissingReference, clean_name
from enclave.messaging.models import (
    CANCELLED,
    DRAFT,
    OUTBOX_CANCELLED,
    OUTBOX_DEFERRED,
    OUTBOX_QUEUED,
    PAUSED,
    QUEUED,
    SCHEDULED,
    SENT,
    VERIFIED,
    Broadcast,
    EmailTemplate,
    OutboxMessage,
    SenderDomain,
)
from enclave.people import locks as people_locks
from enclave.people.actions import DOT_ATOM

P = Permission
NAME_MAX = 100
MAX_TOPICS = MAX_SEGMENTS = 20
DUPLICATE_NAME = "Another broadcast has this name."
NOT_A_DRAFT = "Only a draft can be changed, queued or deleted."
NOT_QUEUED = "Only a scheduled, queued or paused broadcast can be cancelled."
SENDER_UNVERIFIED = ("The sender domain is not verified: publish its DKIM record and "
                     "check the domain first.")
_LOCAL_PART = re.compile(rf"^{DOT_ATOM}$")
FROM_NAME_RULE = 'At most 100 characters on one line, without "=?", "<", ">" or "@".'


def _clean_name(name) -> str:
    return clean_name(name, "broadcast", NAME_MAX)


def _clean_from(from_local, from_name) -> tuple[str, str]:
    local = str(from_local or "").strip()
    if not _LOCAL_PART.match(local) or len(local) > 64:
        raise ValidationError({"from_local": "The part before the @: letters, digits and "
                                             "!#$%&'*+/=?^_`{|}~.- (at most 64)."})
    name = str(from_name or "")
    # No control characters (a header is one line) and no "=?": the email package would
    # decode an RFC 2047 encoded word into the From header, so a display name could
    # carry a second, forged address. No "<", ">" or "@" either: a display name that
    # reads as an address ("CEO <ceo@bank.example>") is how mail clients are fooled.
    if len(name) > 100 or any(unicodedata.category(ch) == "Cc" for ch in name) \
            or "=?" in name or any(ch in name for ch in "<>@"):
        raise ValidationError({"from_name": FROM_NAME_RULE})
    return local, " ".join(name.split())


def _ids(values, kind: str, limit: int) -> list[int]:
    try:
        ids = sorted({int(v) for v in values or ()})
    except (TypeError, ValueError):
        raise ValidationError({kind: "A list of ids."}) from None
    if any(not 0 < i < 2**63 for i in ids):
        raise ValidationError({kind: "A list of ids."})
    if len(ids) > limit:
        raise ValidationError({kind: f"At most {limit}."})
    return ids


def _check_audience(account_id: int, topics: list[int], segments: list[int]) -> None:
    from enclave.audience.models import Segment, Topic

    if not topics:
        raise ValidationError({"topics": "Choose at least one topic: a broadcast goes to "
                                         "people who subscribed to it."})
    for model, ids, kind in ((Topic, topics, "topics"), (Segment, segments, "segments")):
        found = set(model.objects.filter(account_id=account_id, pk__in=ids)
                    .values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:  # another account's looks exactly like a missing one
            raise MissingReference({kind: f"No such {kind[:-1]}: "
                                          f"{', '.join(map(str, missing[:20]))}."})


def _own(account_id: int, template: EmailTemplate, sender: SenderDomain) -> None:
    if template.account_id != account_id:
        raise MissingReference({"template": "No such template."})
    if sender.account_id != account_id:
        raise MissingReference({"sender": "No such sender domain."})


def do_create_broadcast(account, name: str, *, template: EmailTemplate,
                        sender: SenderDomain, from_local: str, from_name: str = "",
                        topics, segments=(), track_opens: bool = False,
                        track_clicks: bool = False, actor: Principal,
                        request=None) -> Broadcast:
    """A draft broadcast. Needs ``email.manage``; the template, sender domain, topics
    (at least one) and segments must be the account's (MissingReference otherwise).
    Open and click tracking are off unless asked for (``messaging.tracking``)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=account.pk)
    name = _clean_name(name)
    local, display = _clean_from(from_local, from_name)
    topic_ids = _ids(topics, "topics", MAX_TOPICS)
    segment_ids = _ids(segments, "segments", MAX_SEGMENTS)
    _own(account.pk, template, sender)
    _check_audience(account.pk, topic_ids, segment_ids)
    try:
        with transaction.atomic():
            broadcast = Broadcast.objects.create(
                account=account, name=name, template=template, sender=sender,
                from_local=local, from_name=display, topics=topic_ids,
                segments=segment_ids, track_opens=bool(track_opens),
                track_clicks=bool(track_clicks), created_by_id=actor.member_id)
            audit.record(AuditEventType.BROADCAST_CREATED, actor=actor,
                         account_id=account.pk, request=request, target_type="broadcast",
                         target_id=broadcast.pk)
    except IntegrityError:
        raise ValidationError({"name": DUPLICATE_NAME}, code="unique") from None
    return broadcast


def recipients(broadcast: Broadcast, *, now=None):
    """The people ``broadcast`` goes to now (a queryset; see the module docstring)."""
    from enclave.audience import membership
    from enclave.audience.models import SUBSCRIBED, Segment, Subscription
    from enclave.people.models import Person

    people = Person.objects.filter(
        account_id=broadcast.account_id, archived_at__isnull=True,
        pk__in=Subscription.objects.filter(
            topic__account_id=broadcast.account_id, topic_id__in=broadcast.topics,
            status=SUBSCRIBED).values("person_id")).exclude(email="")
    if broadcast.segments:
        ctx = membership.context(broadcast.account_id, now=now)
        inside = Q()
        for segment in Segment.objects.filter(account_id=broadcast.account_id,
                                              pk__in=broadcast.segments):
            inside |= membership.condition(segment, ctx)
        people = ctx.people(people).filter(inside) if inside else people.none()
    return people


def _snapshot(broadcast: Broadcast, people, now) -> int:
    """Everyone in ``people`` gets an outbox row, by ``INSERT … SELECT`` in the database
    (a million recipients never pass through Python). Returns how many."""
    sql, params = people.order_by().values("pk").query.sql_with_params()
    table = OutboxMessage._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (broadcast_id, person_id, state, created_at, "  # noqa: S608 — a model table; the people query is the ORM's, with parameters
                       "attempts, message_id, detail, lease_id) "
                       f"SELECT %s, q.*, %s, %s, 0, '', '', '' FROM ({sql}) AS q",
                       [broadcast.pk, OUTBOX_QUEUED, stamp, *params])
        return cursor.rowcount


def _stagger(broadcast: Broadcast, now) -> None:
    """A local-time broadcast's outbox rows wait for their recipient's moment: the
    wall-clock time asked for in the person's time zone (the locked ``tzdata``'s rules,
    never the host's), or ``local_at`` for people without one (or with a value that is
    not a zone name the tz database has: a name it dropped, a row restored from
    elsewhere). A moment already past — a broadcast started late — is now (NULL).

    One ``UPDATE`` over the broadcast's rows, the moment chosen by the recipient's zone
    in a ``CASE`` (a statement per zone would pass over the rows once per zone)."""
    from enclave.people.actions import time_zone
    from enclave.people.models import Person

    wall = local_wall(broadcast).replace(tzinfo=None)
    rows = OutboxMessage.objects.filter(broadcast=broadcast)
    zones = sorted(set(Person.objects.filter(pk__in=rows.values("person_id"))
                       .values_list("time_zone", flat=True).distinct()))

    def due(moment):
        return connection.ops.adapt_datetimefield_value(moment) if moment > now else None

    whens, params = [], []
    for zone in zones:
        tz = time_zone(zone)
        if tz is not None:
            whens.append("WHEN %s THEN %s")
            params += [zone, due(wall.replace(tzinfo=tz).astimezone(dt.UTC))]
    fallback = due(broadcast.local_at)
    if not whens and fallback is None:
        return
    table, people = OutboxMessage._meta.db_table, Person._meta.db_table
    zone_of = f"(SELECT p.time_zone FROM {people} p WHERE p.id = {table}.person_id)"  # noqa: S608 — model tables
    moment = f"CASE {zone_of} {' '.join(whens)} ELSE %s END" if whens else "%s"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET next_attempt_at = {moment} "  # noqa: S608 — model tables; values are parameters
                       "WHERE broadcast_id = %s", [*params, fallback, broadcast.pk])


def _locked(broadcast: Broadcast) -> Broadcast | None:
    return Broadcast.objects.select_for_update().filter(
        pk=broadcast.pk, account_id=broadcast.account_id).first()


def _check_sendable(locked: Broadcast) -> None:
    if SenderDomain.objects.filter(pk=locked.sender_id, state=VERIFIED).count() != 1:
        raise MissingReference({"sender": SENDER_UNVERIFIED})
    _check_audience(locked.account_id, locked.topics, locked.segments)


def _start(locked: Broadcast, now) -> int:
    """Snapshot ``locked``'s recipients and mark it queued (or sent, when nobody is
    left to send to); inside the caller's transaction. How many were queued."""
    from enclave.audience import rules
    from enclave.billing import entitlements

    _check_sendable(locked)
    entitlements.check_sending(locked.account_id)
    try:
        count = _snapshot(locked, recipients(locked, now=now), now)
    except rules.RuleError:
        raise MissingReference({"segments": "A segment's rules can no longer be "
                                            "used; fix the segment first."}) from None
    # The plan's monthly sends, with this broadcast's recipients counted (the snapshot
    # is undone with the transaction when they do not fit).
    if count:
        entitlements.check(locked.account_id, entitlements.MONTHLY_SENDS, count)
    if locked.local_at is not None and count:
        _stagger(locked, now)
    locked.state, locked.queued_at, locked.recipients = QUEUED, now, count
    locked.send_at, locked.problem = None, ""
    if locked.track_opens or locked.track_clicks:
        from enclave.keys import api as keys
        from enclave.messaging import tracking

        # The key its tracking tokens are signed with, and the links a click may go to,
        # fixed as it goes out.
        locked.tracking_key_version = keys.primary_version("tokens")
        if locked.track_clicks:
            locked.tracked_links = tracking.literal_links(
                EmailTemplate.objects.values_list("compiled", flat=True).get(
                    pk=locked.template_id))
    if count == 0:  # nobody to send to: done at once, never "queued" for ever
        locked.state, locked.finished_at = SENT, now
    locked.save()
    return count


def do_queue_broadcast(broadcast: Broadcast, *, actor: Principal, request=None) -> Broadcast:
    """Snapshot the recipients into the outbox and mark the broadcast queued, in one
    transaction: either everyone is queued or no one. Refused (409) unless it is a draft
    whose sender domain is verified and whose topics and segments still exist."""
    authorize(actor, P.EMAIL_MANAGE, account_id=broadcast.account_id)
    now = clock.now()
    with transaction.atomic():
        people_locks.hold_for_copy(broadcast.account_id)  # before the row lock
        locked = _locked(broadcast)
        if locked is None or locked.state != DRAFT:
            raise MissingReference({"broadcast": NOT_A_DRAFT})
        count = _start(locked, now)
        audit.record(AuditEventType.BROADCAST_QUEUED, actor=actor,
                     account_id=locked.account_id, request=request,
                     target_type="broadcast", target_id=locked.pk,
                     extra={"recipients": count})
    return locked


SCHEDULE_AHEAD = dt.timedelta(days=366)
NOT_IN_FUTURE = "A time in the future, at most a year ahead, with its UTC offset."
# The first time zone to reach a wall-clock time is UTC+14 (Kiritimati).
FIRST_ZONE = dt.timedelta(hours=14)
LOCAL_TOO_SOON = ("At each recipient's local time: that time has already come in some "
                  "time zones (the first is UTC+14). Choose a later one.")


def local_wall(broadcast: Broadcast) -> dt.datetime | None:
    """The moment a local-time broadcast was asked for, in the UTC offset it was given
    in (its wall-clock time is each recipient's); None for any other broadcast."""
    if broadcast.local_at is None:
        return None
    offset = dt.timezone(dt.timedelta(minutes=broadcast.local_offset or 0))
    return broadcast.local_at.astimezone(offset)


def do_schedule_broadcast(broadcast: Broadcast, send_at, *, local_time: bool = False,
                          actor: Principal, request=None) -> Broadcast:
    """Send a draft at ``send_at`` (an aware datetime in the next year): its recipients
    are snapshotted then — the segments as they are at that moment. Checked now as well
    (409: not a draft, sender domain unverified, a topic or segment gone).

    With ``local_time``, each recipient with a time zone gets it when their clock shows
    ``send_at``'s date and time as written (in its own offset), and people without one
    at ``send_at``. The snapshot is then taken when that time first comes anywhere (in
    UTC+14), which must still be ahead."""
    authorize(actor, P.EMAIL_MANAGE, account_id=broadcast.account_id)
    now = clock.now()
    if not isinstance(send_at, dt.datetime) or send_at.tzinfo is None \
            or not now < send_at <= now + SCHEDULE_AHEAD:
        raise ValidationError({"send_at": NOT_IN_FUTURE})
    offset = send_at.utcoffset()
    starts = send_at.astimezone(dt.UTC)  # shown in UTC, as when read back
    if local_time:
        # The wall-clock time, read as if it were UTC, less the first zone's offset.
        starts = min(starts, send_at.replace(tzinfo=dt.UTC) - FIRST_ZONE)
        if starts <= now:
            raise ValidationError({"send_at": LOCAL_TOO_SOON})
    with transaction.atomic():
        locked = _locked(broadcast)
        if locked is None or locked.state != DRAFT:
            raise MissingReference({"broadcast": NOT_A_DRAFT})
        _check_sendable(locked)
        locked.state, locked.send_at, locked.problem = SCHEDULED, starts, ""
        locked.local_at = send_at if local_time else None
        locked.local_offset = offset // dt.timedelta(minutes=1) if local_time else None
        locked.save()
        extra = {"send_at": send_at.astimezone(dt.UTC).isoformat()}
        if local_time:
            extra["local_time"] = True
        audit.record(AuditEventType.BROADCAST_SCHEDULED, actor=actor,
                     account_id=locked.account_id, request=request,
                     target_type="broadcast", target_id=locked.pk, extra=extra)
    return locked


def start_due_broadcasts(*, now=None) -> int:
    """Queue every scheduled broadcast whose time has come (the worker job); how many
    were started. One that can no longer be sent goes back to a draft with its
    ``problem`` said, audited; one that fails otherwise (the database) is logged and
    left for the next run — it never stops the others, nor the sending after them."""
    import logging

    now = now or clock.now()
    started = 0
    for pk in Broadcast.objects.filter(state=SCHEDULED, send_at__lte=now) \
            .order_by("send_at", "pk").values_list("pk", flat=True)[:100]:
        try:
            started += do_start_scheduled_broadcast(pk, now=now, actor=None)
        except Exception as exc:  # noqa: BLE001 — one broadcast's trouble stops no other
            logging.getLogger("enclave.messaging").error(
                "scheduled broadcast %s did not start (%s); retried next run", pk,
                type(exc).__name__)
    return started


def do_start_scheduled_broadcast(broadcast_id: int, *, now, actor) -> bool:
    """The system's half of scheduling: queue the broadcast if it is still scheduled and
    due (another worker may have started it); whether this call started it."""
    authorize_system(actor)
    account_id = Broadcast.objects.filter(pk=broadcast_id).values_list(
        "account_id", flat=True).first()
    if account_id is None:
        return False
    with transaction.atomic():
        people_locks.hold_for_copy(account_id)  # before the row lock
        # Another worker starting it holds the row: this one moves on.
        locked = Broadcast.objects.select_for_update(skip_locked=True).filter(
            pk=broadcast_id, state=SCHEDULED, send_at__lte=now).first()
        if locked is None:
            return False
        try:
            with transaction.atomic():
                count = _start(locked, now)
        except ValidationError as exc:
            locked.refresh_from_db()
            locked.state, locked.send_at = DRAFT, None
            locked.local_at = locked.local_offset = None
            locked.problem = " ".join(exc.messages)[:200]
            locked.save()
            audit.record(AuditEventType.BROADCAST_NOT_STARTED, actor=None,
                         account_id=locked.account_id, target_type="broadcast",
                         target_id=locked.pk,
                         # A plan's refusal (billing.entitlements) names no field.
                         extra={"fields": sorted(exc.message_dict)
                                if hasattr(exc, "error_dict") else ["plan"]})
            return False
        audit.record(AuditEventType.BROADCAST_QUEUED, actor=None,
                     account_id=locked.account_id, target_type="broadcast",
                     target_id=locked.pk, extra={"recipients": count, "scheduled": True})
    return True


def _move(broadcast, *, actor, request, source: str, target: str, refusal: str,
          event) -> Broadcast:
    authorize(actor, P.EMAIL_MANAGE, account_id=broadcast.account_id)
    with transaction.atomic():
        locked = _locked(broadcast)
        if locked is None or locked.state != source:
            raise MissingReference({"broadcast": refusal})
        locked.state = target
        locked.save()
        audit.record(event, actor=actor, account_id=locked.account_id, request=request,
                     target_type="broadcast", target_id=locked.pk)
    return locked


def do_pause_broadcast(broadcast: Broadcast, *, actor: Principal, request=None) -> Broadcast:
    """Stop handing a queued broadcast's messages over until it is resumed; nothing is
    lost (a message a worker holds goes back to the queue)."""
    return _move(broadcast, actor=actor, request=request, source=QUEUED, target=PAUSED,
                 refusal="Only a queued broadcast can be paused.",
                 event=AuditEventType.BROADCAST_PAUSED)


def do_resume_broadcast(broadcast: Broadcast, *, actor: Principal,
                        request=None) -> Broadcast:
    """Carry on sending a paused broadcast where it stopped (one with nothing left to
    do — its last rows finished or were erased while paused — is sent at once)."""
    from enclave.billing import entitlements
    from enclave.messaging import pipeline

    entitlements.check_sending(broadcast.account_id)
    resumed = _move(broadcast, actor=actor, request=request, source=PAUSED, target=QUEUED,
                    refusal="Only a paused broadcast can be resumed.",
                    event=AuditEventType.BROADCAST_RESUMED)
    if pipeline.close_finished({resumed.pk}):
        resumed.refresh_from_db()
    return resumed


def do_hold_account_broadcasts(account_id: int, *, reason: str, actor=None) -> int:
    """Pause every queued broadcast of an account (the system's: its sending is paused
    for an overdue subscription, ``enclave.billing``); members resume them. How many."""
    authorize_system(actor)
    held = 0
    with transaction.atomic():
        for locked in Broadcast.objects.select_for_update().filter(account_id=account_id,
                                                                   state=QUEUED):
            locked.state = PAUSED
            locked.save()
            audit.record(AuditEventType.BROADCAST_PAUSED, actor=None, account_id=account_id,
                         target_type="broadcast", target_id=locked.pk,
                         extra={"reason": reason})
            held += 1
    return held


def do_cancel_broadcast(broadcast: Broadcast, *, actor: Principal, request=None) -> Broadcast:
    """Stop a queued or paused broadcast: what is still queued in the outbox is
    cancelled. A scheduled one goes back to being a draft (nothing was sent)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=broadcast.account_id)
    with transaction.atomic():
        locked = _locked(broadcast)
        if locked is not None and locked.state == SCHEDULED:
            locked.state, locked.send_at = DRAFT, None
            locked.local_at = locked.local_offset = None
            locked.save()
            audit.record(AuditEventType.BROADCAST_SCHEDULED, actor=actor,
                         account_id=locked.account_id, request=request,
                         target_type="broadcast", target_id=locked.pk,
                         extra={"send_at": None})
            return locked
        if locked is None or locked.state not in (QUEUED, PAUSED):
            raise MissingReference({"broadcast": NOT_QUEUED})
        # Queued and deferred rows stop here; a row a worker holds is not handed over
        # either (the worker renews its lease only while the broadcast is queued, and
        # then cancels the row itself).
        stopped = OutboxMessage.objects.filter(
            broadcast=locked, state__in=(OUTBOX_QUEUED, OUTBOX_DEFERRED)) \
            .update(state=OUTBOX_CANCELLED)
        locked.state = CANCELLED
        locked.save()
        audit.record(AuditEventType.BROADCAST_CANCELLED, actor=actor,
                     account_id=locked.account_id, request=request,
                     target_type="broadcast", target_id=locked.pk,
                     extra={"stopped": stopped})
    return locked


TEST_NEEDS_MEMBER = "A test goes to your own address: sign in as a member to send one."


def do_send_test_broadcast(broadcast: Broadcast, person_id=None, *, actor: Principal,
                           request=None):
    """Send the broadcast's email once, now, to the acting member's own address — never
    anyone else's — rendered as the preview renders it (for a sample person or one of
    the account's people, fields as the member may see them, placeholder links; the
    subject starts with "[Test]"). 409 without a verified sender domain or for an API
    key (it has no address). Audited with the outcome; returns the transport's
    ``Outcome``."""
    import dataclasses
    import secrets

    from enclave.billing import entitlements
    from enclave.core import ratelimit
    from enclave.messaging import access, compose, rendering, transports

    authorize(actor, P.EMAIL_MANAGE, account_id=broadcast.account_id)
    entitlements.check_sending(broadcast.account_id)
    email = getattr(actor.member, "email", "") if not actor.is_api_key else ""
    if not email:
        raise MissingReference({"broadcast": TEST_NEEDS_MEMBER})
    ratelimit.require("broadcast.test", str(actor.member_id))
    sender = SenderDomain.objects.get(pk=broadcast.sender_id)
    key = access.signing_key(sender)
    if key is None:
        raise MissingReference({"sender": SENDER_UNVERIFIED})
    template = EmailTemplate.objects.get(pk=broadcast.template_id)
    try:
        out = access.preview(actor, template, person_id)
    except rendering.TemplateError as exc:
        raise MissingReference({"template": exc.message}) from None
    out = dataclasses.replace(out, subject=f"[Test] {out.subject}"[:998])
    message_id = f"test.{broadcast.pk}.{secrets.token_hex(8)}"
    try:
        envelope, raw = compose.message(
            domain=sender.domain, from_local=broadcast.from_local,
            from_name=broadcast.from_name, to=email, rendered=out, message_id=message_id,
            unsubscribe_url=access.PREVIEW_LINKS["unsubscribe_url"],
            feedback_id=f"{broadcast.pk}:{broadcast.account_id}:test:enclave",
            selector=key[0], private_key=key[1], now=clock.now())
    except compose.Unsendable as exc:
        raise MissingReference({"broadcast": f"Your address cannot be mailed: {exc}."}) \
            from None
    # Whose data the test carries (a chosen person the member may read): a captured copy
    # is then erased with them, and the audit row says whose data went out.
    person = None
    if person_id is not None and actor.can(P.PEOPLE_READ):
        from enclave.people.models import Person

        person = Person.objects.filter(account_id=broadcast.account_id, pk=person_id) \
            .values_list("pk", flat=True).first()
    envelope = dataclasses.replace(envelope, account_id=broadcast.account_id,
                                   broadcast_id=broadcast.pk, person_id=person)
    transport = transports.configured()
    try:
        outcome = transport.send(envelope, raw)
    finally:
        transport.close()
    audit.record(AuditEventType.BROADCAST_TEST_SENT, actor=actor,
                 account_id=broadcast.account_id, request=request, target_type="broadcast",
                 target_id=broadcast.pk, extra={"outcome": outcome.kind,
                                                "code": outcome.code, "person": person})
    return outcome


def do_delete_broadcast(broadcast: Broadcast, *, actor: Principal, request=None) -> None:
    """Delete a draft (409 for anything else: a queued broadcast is cancelled instead,
    so what was sent stays on record)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=broadcast.account_id)
    with transaction.atomic():
        locked = _locked(broadcast)
        if locked is None:
            return
        if locked.state != DRAFT:
            raise MissingReference({"broadcast": NOT_A_DRAFT})
        locked.delete()
        audit.record(AuditEventType.BROADCAST_DELETED, actor=actor,
                     account_id=broadcast.account_id, request=request,
                     target_type="broadcast", target_id=broadcast.pk)
