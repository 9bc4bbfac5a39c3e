"""Segment state changes. One transaction and one audit row each; audit rows name the
segment by id and people by id — never a rule's values, which may be personal data."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.audience import access, membership, rules
from enclave.audience.models import DYNAMIC, KINDS, STATIC, Segment, SegmentMember
from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.core.validation import MissingReference, clean_name

P = Permission
NAME_MAX = 100
IN_USE = "Other segments refer to this one; change them first."
DUPLICATE_NAME = "Another segment has this name."
# The segment's kind is in the way (409): the request would be fine for the other kind.
LIST_HAS_NO_RULES = "This segment is a static list: it has no rules; add people to it."
DYNAMIC_HAS_NO_HAND_MEMBERS = ("People join a dynamic segment by its rules; add them to a "
                               "static list instead.")
MAX_PEOPLE_PER_CALL = 1000
CONCURRENT_CHANGE = ("Someone changed these people at the same time; nothing was saved. "
                     "Try again.")
LIST_GONE = "The list was deleted meanwhile; nothing was imported."


def _clean_name(name) -> str:
    return clean_name(name, "segment", NAME_MAX)


def _unique_name(exc: IntegrityError) -> ValidationError:
    if "name" in str(exc) or "segment_name_unique" in str(exc):
        return ValidationError({"name": DUPLICATE_NAME}, code="unique")
    # Anything else is a concurrent change (a person erased while being copied): 409.
    return MissingReference({"people": CONCURRENT_CHANGE})


def do_create_segment(account, name: str, kind: str, rule_data=None, *, actor: Principal,
                      request=None) -> Segment:
    """A dynamic segment (``rule_data``: a rule tree) or a static list (no rules). Needs
    ``segments.manage``; the rules are checked against what the actor may see."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=account.pk)
    name = _clean_name(name)
    if kind not in KINDS:
        raise ValidationError({"kind": "Choose dynamic or static."})
    if kind == STATIC and rule_data is not None:
        raise ValidationError({"rules": "A static list has no rules; add people to it."})
    rule = access.checked_rules(rule_data, actor=actor) if kind == DYNAMIC else None
    try:
        with transaction.atomic():
            segment = Segment.objects.create(
                account=account, name=name, kind=kind,
                rules=None if rule is None else rules.to_json(rule),
                time_dependent=bool(rule is not None and rules.time_dependent(rule)),
                created_by_id=actor.member_id)
            audit.record(AuditEventType.SEGMENT_CREATED, actor=actor, account_id=account.pk,
                         request=request, target_type="segment", target_id=segment.pk,
                         extra={"kind": kind})
    except IntegrityError as exc:
        raise _unique_name(exc) from None
    return segment


def do_change_segment(segment: Segment, *, name=None, rule_data=None, actor: Principal,
                      request=None) -> Segment:
    """Rename and/or replace a dynamic segment's rules (checked against what the actor
    may see, so nobody saves a rule on a field hidden or masked to them). A change of
    rules is evaluated in full at the next refresh. No change → no audit row."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=segment.account_id)
    if rule_data is not None and segment.kind == STATIC:
        raise ValidationError({"rules": LIST_HAS_NO_RULES})
    name = None if name is None else _clean_name(name)
    rule = None if rule_data is None else access.checked_rules(rule_data, actor=actor,
                                                         segment_id=segment.pk)
    try:
        with transaction.atomic():
            locked = Segment.objects.select_for_update().get(pk=segment.pk,
                                                             account_id=segment.account_id)
            changed = []
            if name is not None and name != locked.name:
                locked.name = name
                changed.append("name")
            if rule is not None and rules.to_json(rule) != locked.rules:
                locked.rules = rules.to_json(rule)
                locked.time_dependent = rules.time_dependent(rule)
                locked.refreshed_at = None  # the next refresh evaluates everyone
                changed.append("rules")
            if not changed:
                return locked
            locked.updated_at = clock.now()
            locked.save()
            audit.record(AuditEventType.SEGMENT_CHANGED, actor=actor,
                         account_id=locked.account_id, request=request,
                         target_type="segment", target_id=locked.pk,
                         extra={"fields": changed})
    except IntegrityError as exc:
        raise _unique_name(exc) from None
    return locked


def do_delete_segment(segment: Segment, *, actor: Principal, request=None) -> None:
    """Delete a segment with its rows and history. Refused (409: ``IN_USE``) while another
    segment's rules refer to it (``referring`` lists them)."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=segment.account_id)
    with transaction.atomic():
        locked = Segment.objects.select_for_update().filter(
            pk=segment.pk, account_id=segment.account_id).first()
        if locked is None:
            return
        if referring(locked):
            raise ValidationError({"segment": IN_USE}, code="in_use")
        locked.delete()
        audit.record(AuditEventType.SEGMENT_DELETED, actor=actor,
                     account_id=segment.account_id, request=request,
                     target_type="segment", target_id=segment.pk)


def do_snapshot_segment(segment: Segment, name: str, *, actor: Principal,
                        request=None) -> Segment:
    """A new static list holding the people in ``segment`` at this moment (a dynamic
    segment's rules evaluated now, or a list's members copied). The list is independent
    of its source from then on. Needs ``segments.manage``. The audit row names the
    source and how many people were copied, not who (a snapshot may hold millions)."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=segment.account_id)
    name = _clean_name(name)
    now = clock.now()
    try:
        with transaction.atomic():
            source = Segment.objects.filter(pk=segment.pk,
                                            account_id=segment.account_id).first()
            if source is None:
                raise MissingReference({"segment": "No such segment."})
            try:
                people = membership.members_of(
                    source, membership.context(source.account_id, now=now))
            except rules.RuleError:
                raise ValidationError({"rules": access.UNUSABLE_RULES}) from None
            snapshot = Segment.objects.create(
                account_id=source.account_id, name=name, kind=STATIC,
                created_by_id=actor.member_id, created_at=now, updated_at=now)
            copied = membership.copy_rows(snapshot, people, now)
            audit.record(AuditEventType.SEGMENT_SNAPSHOT_TAKEN, actor=actor,
                         account_id=source.account_id, request=request,
                         target_type="segment", target_id=snapshot.pk,
                         extra={"source": source.pk, "people": copied})
    except IntegrityError as exc:
        raise _unique_name(exc) from None
    return snapshot


def referring(segment: Segment) -> list[int]:
    """Ids of the account's segments whose rules refer to ``segment`` directly."""
    out = []
    for pk, stored in Segment.objects.filter(account_id=segment.account_id, kind=DYNAMIC) \
            .exclude(pk=segment.pk).values_list("pk", "rules"):
        try:
            if segment.pk in rules.referenced_segments(rules.parse(stored)):
                out.append(pk)
        except rules.RuleError:
            continue
    return out


def _people_ids(segment: Segment, person_ids) -> list[int]:
    from enclave.people.models import Person

    ids = sorted({int(i) for i in person_ids})
    if not ids:
        raise ValidationError({"people": "Name at least one person."})
    if len(ids) > MAX_PEOPLE_PER_CALL:
        raise ValidationError({"people": f"At most {MAX_PEOPLE_PER_CALL} people at once."})
    found = set(Person.objects.filter(account_id=segment.account_id, pk__in=ids)
                .values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:  # another account's person looks exactly like a missing one
        raise MissingReference(
            {"people": f"No such person: {', '.join(map(str, missing[:20]))}."})
    return ids


def _require_list(segment: Segment) -> None:
    if segment.kind != STATIC:
        raise ValidationError({"segment": DYNAMIC_HAS_NO_HAND_MEMBERS})


def _join(segment: Segment, person_ids: list[int], now) -> list[int]:
    """Those of ``person_ids`` not yet in the (locked) list ``segment`` join it, with
    their transitions; returns them."""
    present: set[int] = set()
    for start in range(0, len(person_ids), membership.CHUNK):
        present.update(SegmentMember.objects.filter(
            segment=segment, person_id__in=person_ids[start:start + membership.CHUNK])
            .values_list("person_id", flat=True))
    new = [i for i in person_ids if i not in present]
    membership.write_rows(segment, new, [], now)
    return new


def do_add_segment_people(segment: Segment, person_ids, *, actor: Principal,
                          request=None) -> int:
    """Add people (of the segment's account) to a static list; returns how many were new.
    Dynamic segments referring to the list are brought up to date for them."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=segment.account_id)
    _require_list(segment)
    ids = _people_ids(segment, person_ids)
    now = clock.now()
    with transaction.atomic():
        Segment.objects.select_for_update().get(pk=segment.pk)
        new = _join(segment, ids, now)
        if not new:
            return 0
        audit.record(AuditEventType.SEGMENT_PEOPLE_ADDED, actor=actor,
                     account_id=segment.account_id, request=request,
                     target_type="segment", target_id=segment.pk, extra={"people": new})
        membership.refresh_dependents(segment.account_id, segment.pk, new, now=now)
    return len(new)


def do_add_imported_people(segment: Segment, person_ids: list[int], *, actor: Principal,
                           request=None) -> int:
    """Everyone a people import names joins the static list ``segment`` — run by
    ``people.actions.do_import_people`` inside its transaction (see
    :class:`ListDestination`), so a failure here imports nothing. Returns how many were
    new to the list. The audit row says how many, not who (a file may name 100,000)."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=segment.account_id)
    now = clock.now()
    with transaction.atomic():
        locked = Segment.objects.select_for_update().filter(
            pk=segment.pk, account_id=segment.account_id, kind=STATIC).first()
        if locked is None:
            raise ValidationError({"list": LIST_GONE})
        new = _join(locked, person_ids, now)
        if not new:
            return 0
        audit.record(AuditEventType.SEGMENT_PEOPLE_ADDED, actor=actor,
                     account_id=locked.account_id, request=request,
                     target_type="segment", target_id=locked.pk,
                     extra={"via": "import", "count": len(new)})
        membership.refresh_dependents(locked.account_id, locked.pk, new, now=now)
    return len(new)


class ListDestination:
    """The account's static lists as somewhere a people import puts everyone its file
    names (registered with ``people.actions.register_import_destination``). Offered only
    to members who may manage segments."""

    def choices(self, actor: Principal) -> list[tuple[str, str]]:
        if not actor.can(P.SEGMENTS_MANAGE):
            return []
        return [(str(pk), name) for pk, name in Segment.objects.filter(
            account_id=actor.account_id, kind=STATIC).order_by("name", "pk")
            .values_list("pk", "name")]

    def adder(self, actor: Principal, value: str, *, request=None):
        segment = access.access_segment(actor, value, for_write=True)
        _require_list(segment)

        def add(person_ids: list[int]) -> None:
            do_add_imported_people(segment, person_ids, actor=actor, request=request)
        return add


LISTS = ListDestination()


def do_remove_segment_people(segment: Segment, person_ids, *, actor: Principal,
                             request=None) -> int:
    """Remove people from a static list; returns how many were members (a person who
    is not in the list, whether or not they exist, is simply not removed)."""
    authorize(actor, P.SEGMENTS_MANAGE, account_id=segment.account_id)
    _require_list(segment)
    ids = sorted({int(i) for i in person_ids})
    if len(ids) > MAX_PEOPLE_PER_CALL:
        raise ValidationError({"people": f"At most {MAX_PEOPLE_PER_CALL} people at once."})
    now = clock.now()
    with transaction.atomic():
        Segment.objects.select_for_update().get(pk=segment.pk)
        present = sorted(SegmentMember.objects.filter(segment=segment, person_id__in=ids)
                         .values_list("person_id", flat=True))
        if not present:
            return 0
        membership.write_rows(segment, [], present, now)
        audit.record(AuditEventType.SEGMENT_PEOPLE_REMOVED, actor=actor,
                     account_id=segment.account_id, request=request,
                     target_type="segment", target_id=segment.pk, extra={"people": present})
        membership.refresh_dependents(segment.account_id, segment.pk, present, now=now)
    return len(present)
