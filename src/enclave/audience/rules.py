"""Segment rules: a typed tree, validated, then compiled to ONE query (never SQL from users).

A rule is one of (``type`` is the tag):

* ``group`` — ``match`` ``all`` / ``any`` of 1–50 ``rules``;
* ``not`` — the opposite of one condition;
* ``field`` — a built-in field (``visibility.QUERYABLE``, ``created_at``, ``updated_at``)
  or ``custom.<key>`` compared with ``op`` and ``value`` (operators by type: :data:`OPS`);
* ``tag`` — has (``has``: true) or has not the tag ``tag``;
* ``event`` — did event ``name`` at least ``min`` / at most ``max`` times (default: at
  least once), within the last ``within_days`` days or since ``since``, optionally only
  events whose ``property`` compares as ``op`` with ``value``;
* ``segment`` — is (``member``: true) or is not in segment ``segment`` (no cycles);
* ``subscription`` — the person's ``status`` for topic ``topic`` (a key): subscribed,
  unsubscribed, pending or never asked.

:func:`parse` checks the shape (msgspec: strict types, no unknown keys, limits);
:func:`check` what needs the account: fields and their types, segments, cycles, and what
the author may see — a condition on a field the author's role does not see in full is
refused, so a rule can never be used to guess a masked value. :func:`compile` turns a
checked tree into a ``Q`` over ``people.Person`` (``Exists``/``IN`` subqueries for tags,
events and segments), one SQL statement with the account filter in it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from django.db.models import DateField, Exists, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Substr
from django.db.models.lookups import (
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
)
from msgspec import Meta

from enclave.access import personal_data
from enclave.core import clock
from enclave.people import visibility
from enclave.people.values import CUSTOM_NUMBER_LIMIT

# How many rules a group holds at each level of nesting: the top group up to 10, a group
# inside it up to 5, one inside that up to 4; no deeper groups. So a tree holds at most
# 10 × 5 × 4 = 200 conditions (each one a subquery at most: the cost of the one query a
# tree compiles to stays bounded), and the OpenAPI document can say all of it exactly.
GROUP_SIZES = (10, 5, 4)
MAX_DEPTH = len(GROUP_SIZES)
MAX_CONDITIONS = 10 * 5 * 4
MAX_IN_VALUES = 50
MAX_DAYS = 3660
TEXT_MAX = 200
NUMBER_LIMIT = CUSTOM_NUMBER_LIMIT

Text = Annotated[str, Meta(max_length=TEXT_MAX, pattern=r"^[^\x00]*$")]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*\S[^\x00]*$")]
Days = Annotated[int, Meta(ge=0, le=MAX_DAYS)]
Count_ = Annotated[int, Meta(ge=0, le=1_000_000)]
# No double quote: SQLite's JSON paths cannot name such a key, and a rule must mean the
# same on SQLite and PostgreSQL (events may still carry such keys; rules cannot use them).
PropertyKey = Annotated[str, Meta(min_length=1, max_length=128, pattern=r'^[^\x00"]*$')]
Value = str | int | float | bool | list[Text] | None


class FieldRule(msgspec.Struct, tag_field="type", tag="field", forbid_unknown_fields=True,
                frozen=True):
    field: Annotated[str, Meta(min_length=1, max_length=60)]
    op: str
    value: Value = None


class TagRule(msgspec.Struct, tag_field="type", tag="tag", forbid_unknown_fields=True,
              frozen=True):
    tag: Annotated[str, Meta(min_length=1, max_length=50)]
    has: bool = True


# Keys Django's JSON paths read as list positions ("-1", " 7"): refused, on both databases.
INDEX_LIKE = re.compile(r"\s*[+-]?\d[\d_]*\s*")


class PropertyRule(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    property: PropertyKey
    op: Literal["equals", "not_equals", "contains", "gt", "gte", "lt", "lte", "exists"]
    value: Text | int | float | bool | None = None


class EventRule(msgspec.Struct, tag_field="type", tag="event", forbid_unknown_fields=True,
                frozen=True):
    name: Name
    min: Count_ | None = None
    max: Count_ | None = None
    within_days: Annotated[int, Meta(ge=1, le=MAX_DAYS)] | None = None
    since: dt.date | None = None
    where: PropertyRule | None = None


class SegmentRule(msgspec.Struct, tag_field="type", tag="segment", forbid_unknown_fields=True,
                  frozen=True):
    segment: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    member: bool = True


class SubscriptionRule(msgspec.Struct, tag_field="type", tag="subscription",
                       forbid_unknown_fields=True, frozen=True):
    topic: Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[^\x00]*$")]
    status: Literal["subscribed", "unsubscribed", "pending", "never"] = "subscribed"


class GroupRule(msgspec.Struct, tag_field="type", tag="group", forbid_unknown_fields=True,
                frozen=True):
    match: Literal["all", "any"]
    rules: Annotated[list[Rule], Meta(min_length=1)]  # sizes by level: _check_size


class NotRule(msgspec.Struct, tag_field="type", tag="not", forbid_unknown_fields=True,
              frozen=True):
    rule: Rule


Rule = FieldRule | TagRule | EventRule | SegmentRule | SubscriptionRule | GroupRule | NotRule


class RuleError(ValueError):
    """A rule tree that cannot be used; ``str()`` says what and where, safe to show."""


class MissingSegment(RuleError):
    """The tree refers to a segment the account does not have (the API's 404)."""


class MissingTopic(RuleError):
    """The tree names a topic the account does not have (the API's 404)."""


class TooLarge(RuleError):
    """With the segments it refers to, the tree would exceed ``MAX_CONDITIONS`` (409:
    the other segments are in the way)."""

    MESSAGE = (f"With the segments it refers to, this rule would have more than "
               f"{MAX_CONDITIONS} conditions.")


class SegmentCycle(RuleError):
    """Saving the tree would make a segment refer to itself (the API's 409)."""

    MESSAGE = "A segment cannot refer to itself, directly or through other segments."


def parse(data: Any) -> Rule:
    """The rule tree in ``data`` (parsed JSON), shape-checked; RuleError if malformed."""
    try:
        rule = msgspec.convert(_integral(data), Rule, strict=True)
    except msgspec.ValidationError as exc:
        raise RuleError(str(exc).replace("`", "")) from None
    _check_size(rule)
    return rule


def _integral(data: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees), so counts,
    days and ids sent as 3.0 are taken as 3. NaN and infinities are refused."""
    if type(data) is float and not math.isfinite(data):
        raise RuleError("Numbers must be finite.")
    if type(data) is float and data.is_integer() and abs(data) < 2**63:
        return int(data)
    if isinstance(data, dict):
        return {k: _integral(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_integral(v) for v in data]
    return data


def _walk(rule: Rule, depth: int = 0):
    yield rule, depth
    if isinstance(rule, GroupRule):
        for child in rule.rules:
            yield from _walk(child, depth + 1)
    elif isinstance(rule, NotRule):
        yield from _walk(rule.rule, depth + 1)


def _check_size(rule: Rule, level: int = 0) -> None:
    """Groups nest at most ``MAX_DEPTH`` deep, each holding at most its level's
    ``GROUP_SIZES``; a ``not`` wraps one condition (to negate a group, negate its
    conditions and swap all/any) — which keeps the documented tree small enough for a
    contract test to cover."""
    if isinstance(rule, NotRule):
        if isinstance(rule.rule, NotRule | GroupRule):
            raise RuleError("A not wraps one condition (negate a group's conditions and "
                            "swap all/any instead).")
    elif isinstance(rule, GroupRule):
        if level >= MAX_DEPTH:
            raise RuleError(f"Groups nest at most {MAX_DEPTH} deep.")
        if len(rule.rules) > GROUP_SIZES[level]:
            raise RuleError(f"A group at depth {level + 1} holds at most "
                            f"{GROUP_SIZES[level]} rules.")
        for child in rule.rules:
            _check_size(child, level + 1)


def to_json(rule: Rule) -> Any:
    return msgspec.to_builtins(rule)


def referenced_segments(rule: Rule) -> set[int]:
    return {node.segment for node, _ in _walk(rule) if isinstance(node, SegmentRule)}


def time_dependent(rule: Rule) -> bool:
    """Whether membership can change with the passing of time alone."""
    for node, _ in _walk(rule):
        if isinstance(node, EventRule) and node.within_days is not None:
            return True
        if isinstance(node, FieldRule) and node.op in RELATIVE_OPS:
            return True
    return False


# --- fields and operators ---

TEXT_OPS = ("equals", "not_equals", "contains", "not_contains", "starts_with", "in",
            "empty", "not_empty")
RELATIVE_OPS = ("within_last_days", "more_than_days_ago", "anniversary_within_days")
OPS: dict[str, tuple[str, ...]] = {
    "text": TEXT_OPS,
    "select": ("equals", "not_equals", "in", "empty", "not_empty"),
    "number": ("equals", "not_equals", "gt", "gte", "lt", "lte", "empty", "not_empty"),
    "boolean": ("is_true", "is_false", "empty", "not_empty"),
    "date": ("before", "after", "within_last_days", "more_than_days_ago",
             "anniversary_within_days", "empty", "not_empty"),
    "datetime": ("before", "after", "within_last_days", "more_than_days_ago"),
}
BUILTIN_TYPES: dict[str, str] = {
    **dict.fromkeys(visibility.QUERYABLE, "text"), "consent": "select",
    "created_at": "datetime", "updated_at": "datetime",
}
NO_VALUE_OPS = ("empty", "not_empty", "is_true", "is_false")


@dataclass
class Context:
    """What checking and compiling need: the account, the author's permissions, the
    account's custom field definitions and a way to read another segment's rules."""

    account_id: int
    perms: frozenset
    definitions: list = field(default_factory=list)
    # segment id → its stored rules (None for a static list); missing id: not in account
    segment_rules: Any = None
    now: dt.datetime = field(default_factory=clock.now)
    # Filled by compile: aliases the people query must carry (name → (key, expression)).
    aliases: dict = field(default_factory=dict)

    def people(self, queryset):
        """``queryset`` of people with the aliases a compiled ``Q`` refers to."""
        return queryset.alias(**{name: expr for name, (_, expr) in self.aliases.items()})


def field_type(name: str, definitions) -> str:
    if name.startswith("custom."):
        key = name.removeprefix("custom.")
        for definition in definitions:
            if definition.key == key:
                return definition.type
        raise RuleError(f"Unknown field {name!r}.")
    if name not in BUILTIN_TYPES:
        raise RuleError(f"Unknown field {name!r} (rules use {', '.join(BUILTIN_TYPES)} "
                        "and custom.<key>).")
    return BUILTIN_TYPES[name]


def _definition(name: str, definitions):
    key = name.removeprefix("custom.")
    return next(d for d in definitions if d.key == key)


def _check_field(rule: FieldRule, ctx: Context) -> None:
    kind = field_type(rule.field, ctx.definitions)
    if visibility.field_level(ctx.perms, rule.field, ctx.definitions) != visibility.VISIBLE:
        raise RuleError(f"You cannot use {rule.field!r} in a rule: it is not visible in "
                        "full to you.")
    if rule.field.startswith("custom.") and _definition(rule.field,
                                                        ctx.definitions).encrypt_at_rest:
        raise RuleError(f"You cannot use {rule.field!r} in a rule: it is encrypted at rest.")
    if rule.op not in OPS[kind]:
        raise RuleError(f"{rule.field}: {rule.op!r} is not an operator for a {kind} field "
                        f"(use {', '.join(OPS[kind])}).")
    _check_value(rule, kind, ctx)


def _check_value(rule: FieldRule, kind: str, ctx: Context) -> None:
    op, value, where = rule.op, rule.value, rule.field
    if op in NO_VALUE_OPS:
        if value is not None:
            raise RuleError(f"{where} {op}: send no value.")
        return
    if op in RELATIVE_OPS:
        if type(value) is not int or not 0 <= value <= MAX_DAYS:
            raise RuleError(f"{where} {op}: send a whole number of days, 0–{MAX_DAYS}.")
        if op == "anniversary_within_days" and value > 366:
            raise RuleError(f"{where} {op}: at most 366 days.")
        return
    if op in ("before", "after"):
        if not isinstance(value, str) or _date(value) is None:
            raise RuleError(f"{where} {op}: send a date as YYYY-MM-DD.")
        return
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
            raise RuleError(f"{where} in: send a list of 1–{MAX_IN_VALUES} texts.")
        values = value
    else:
        values = [value]
    for item in values:
        if kind == "number":
            if type(item) not in (int, float):
                raise RuleError(f"{where} {op}: send a number.")
            if abs(item) > NUMBER_LIMIT:
                raise RuleError(f"{where} {op}: numbers are between -{NUMBER_LIMIT} and "
                                f"{NUMBER_LIMIT}.")
        elif not isinstance(item, str):
            raise RuleError(f"{where} {op}: send a text.")
        elif len(item) > TEXT_MAX or "\x00" in item:
            raise RuleError(f"{where} {op}: at most {TEXT_MAX} characters, no NUL.")
        elif kind == "select" and where.startswith("custom.") and item not in (
                _definition(where, ctx.definitions).options or ()):
            raise RuleError(f"{where} {op}: {item!r} is not one of the field's options.")
        elif where == "consent" and item not in ("unknown", "granted", "withdrawn"):
            raise RuleError("consent: use unknown, granted or withdrawn.")


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def check(rule: Rule, ctx: Context, *, segment_id: int | None = None) -> None:
    """RuleError unless every condition of ``rule`` is usable by ``ctx``'s author in
    ``ctx``'s account; ``segment_id`` (the segment being saved) must not be reachable
    through the segments ``rule`` refers to (no cycles)."""
    for node, _ in _walk(rule):
        if isinstance(node, FieldRule):
            _check_field(node, ctx)
        elif isinstance(node, EventRule):
            _check_event(node, ctx)
        elif isinstance(node, SubscriptionRule):
            _check_subscription(node, ctx)
        elif isinstance(node, SegmentRule) and ctx.segment_rules(node.segment) is _MISSING:
            raise MissingSegment(f"Segment {node.segment} does not exist.")
    _check_cycles(rule, ctx, segment_id)
    if expanded_size(rule, ctx) > MAX_CONDITIONS:
        raise TooLarge(TooLarge.MESSAGE)


def expanded_size(rule: Rule, ctx: Context, _depth: int = 0) -> int:
    """Conditions ``rule`` compiles to, a referenced dynamic segment counting as all of
    its own (compiling inlines it): the bound on the one query's size."""
    if _depth > 20:  # only a stored cycle could go this deep; treat it as too large
        return MAX_CONDITIONS + 1
    total = 0
    for node, _ in _walk(rule):
        if isinstance(node, GroupRule | NotRule):
            continue
        total += 1
        if isinstance(node, SegmentRule):
            stored = ctx.segment_rules(node.segment)
            if stored is not None and stored is not _MISSING:
                try:
                    total += expanded_size(parse(stored), ctx, _depth + 1)
                except RuleError:
                    continue
        if total > MAX_CONDITIONS:
            break
    return total


def _check_subscription(rule: SubscriptionRule, ctx: Context) -> None:
    from enclave.audience.models import Topic

    # Who is subscribed to what is about people: as for a field of class "none".
    if visibility.level(ctx.perms, personal_data.NONE) != visibility.VISIBLE:
        raise RuleError("You cannot use subscriptions in a rule without people.read.")
    if not Topic.objects.filter(account_id=ctx.account_id, key=rule.topic).exists():
        raise MissingTopic(f"Topic {rule.topic!r} does not exist.")


def _check_event(rule: EventRule, ctx: Context) -> None:
    # min above max matches nobody; within_days and since together both apply. Neither
    # is an error: the OpenAPI document could not say so (it cannot compare two values).
    if rule.where is not None:
        # Event properties are personal data (the registry): only an author who sees
        # personal data in full may filter on them.
        if visibility.level(ctx.perms, personal_data.PERSONAL) != visibility.VISIBLE:
            raise RuleError("You cannot filter on event properties: they are personal data "
                            "not visible in full to you.")
        where = rule.where
        if INDEX_LIKE.fullmatch(where.property):
            raise RuleError(f"event {rule.name!r}: a property key cannot be a number "
                            "(it would name a list position).")
        if (where.op == "exists") != (where.value is None):
            raise RuleError(f"event {rule.name!r}: exists takes no value; other operators "
                            "need one.")
        if where.op in ("gt", "gte", "lt", "lte") and type(where.value) not in (int, float):
            raise RuleError(f"event {rule.name!r}: {where.op} compares with a number.")
        if type(where.value) in (int, float) and abs(where.value) > NUMBER_LIMIT:
            raise RuleError(f"event {rule.name!r}: numbers are between -{NUMBER_LIMIT} and "
                            f"{NUMBER_LIMIT}.")
        if where.op == "contains" and not isinstance(where.value, str):
            raise RuleError(f"event {rule.name!r}: contains takes a text.")


_MISSING = object()


def _check_cycles(rule: Rule, ctx: Context, segment_id: int | None) -> None:
    seen: set[int] = set()
    todo = [(sid, (sid,)) for sid in referenced_segments(rule)]
    while todo:
        sid, path = todo.pop()
        if segment_id is not None and sid == segment_id:
            raise SegmentCycle(SegmentCycle.MESSAGE)
        if sid in seen:
            continue
        seen.add(sid)
        stored = ctx.segment_rules(sid)
        if stored is _MISSING or stored is None:
            continue
        try:
            inner = parse(stored)
        except RuleError:
            continue
        todo.extend((child, (*path, child)) for child in referenced_segments(inner))


# --- compiling ---

def compile(rule: Rule, ctx: Context) -> Q:
    """A ``Q`` over ``people.Person`` matching ``rule`` (already :func:`check`ed)."""
    if isinstance(rule, GroupRule):
        parts = [compile(child, ctx) for child in rule.rules]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if rule.match == "all" else (out | part)
        return out
    if isinstance(rule, NotRule):
        return ~compile(rule.rule, ctx)
    if isinstance(rule, TagRule):
        from enclave.people.models import PersonTag

        tagged = PersonTag.objects.filter(tag__account_id=ctx.account_id,
                                          tag__name=rule.tag).values("person_id")
        return Q(pk__in=tagged) if rule.has else ~Q(pk__in=tagged)
    if isinstance(rule, SubscriptionRule):
        return _compile_subscription(rule, ctx)
    if isinstance(rule, SegmentRule):
        inside = _compile_segment(rule.segment, ctx)
        return inside if rule.member else ~inside
    if isinstance(rule, EventRule):
        return _compile_event(rule, ctx)
    return _compile_field(rule, ctx)


def _compile_subscription(rule: SubscriptionRule, ctx: Context) -> Q:
    from enclave.audience.models import Subscription

    rows = Subscription.objects.filter(topic__account_id=ctx.account_id,
                                       topic__key=rule.topic)
    if rule.status == "never":
        return ~Q(pk__in=rows.values("person_id"))
    return Q(pk__in=rows.filter(status=rule.status).values("person_id"))


def _compile_segment(segment_id: int, ctx: Context) -> Q:
    """A list: its rows. A dynamic segment: its own rule, compiled in place, so the
    answer is as current as the rest of the query (``check`` refused cycles)."""
    stored = ctx.segment_rules(segment_id)
    if stored is None or stored is _MISSING:
        from enclave.audience.models import SegmentMember

        members = SegmentMember.objects.filter(segment_id=segment_id,
                                               segment__account_id=ctx.account_id)
        return Q(pk__in=members.values("person_id"))
    inner = compile(parse(stored), ctx)
    return Q(archived_at__isnull=True) & inner


def _compile_event(rule: EventRule, ctx: Context) -> Q:
    from enclave.events.models import Event

    events = Event.objects.filter(account_id=ctx.account_id, name=rule.name,
                                  person__isnull=False)
    if rule.within_days is not None:
        events = events.filter(occurred_at__gte=ctx.now - dt.timedelta(days=rule.within_days))
    if rule.since is not None:
        events = events.filter(occurred_at__gte=dt.datetime.combine(
            rule.since, dt.time(), tzinfo=dt.UTC))
    if rule.where is not None:
        # The property key is data (any text an event carried): it reaches the query as
        # an expression's parameter, never as part of a lookup path ("a__gt" is a key).
        events = events.alias(audience_property=KeyTransform(rule.where.property,
                                                             "properties"),
                              audience_property_text=KeyTextTransform(rule.where.property,
                                                                      "properties"))
        events = events.filter(_property_q(rule.where))
    low = 1 if rule.min is None and rule.max is None else (rule.min or 0)
    if low == 0 and rule.max is None:  # "at least 0 times": everyone
        return Q(pk__isnull=False)
    if low == 1 and rule.max is None:
        # "Did X": a semi-join, so the planner chooses between hashing the window's events
        # (index event_account_name_time) and probing each candidate person's.
        return Q(pk__in=events.values("person_id"))
    # "At least N times": EXISTS (… OFFSET N-1 LIMIT 1) per candidate person, which stops
    # at the N-th event (index event_person_name_time) and is evaluated only for people
    # the rule's cheaper conditions left — never a count of every event in the window.
    theirs = events.filter(person_id=OuterRef("pk")).values("pk")
    out = Q(Exists(theirs[low - 1:low])) if low else Q(pk__isnull=False)
    if rule.max is not None:  # "at most M times", zero included: not M+1 times
        out &= ~Q(Exists(theirs[rule.max:rule.max + 1]))
    return out


def _property_q(where: PropertyRule) -> Q:
    """On the events query aliased with ``audience_property`` (the JSON value) and
    ``audience_property_text`` (as text)."""
    if where.op == "exists":
        return Q(properties__has_key=where.property)
    if where.op == "equals":
        return Q(audience_property=where.value)
    if where.op == "not_equals":
        return Q(properties__has_key=where.property) & ~Q(audience_property=where.value)
    if where.op == "contains":
        return Q(audience_property_text__icontains=where.value)
    return Q(**{f"audience_property__{where.op}": where.value})


def _custom_alias(ctx: Context, key: str) -> str:
    """An alias on the people query for custom value ``key``: the key reaches SQL as an
    expression's parameter, never as part of a lookup path (a key may hold "__")."""
    for name, (existing, _) in ctx.aliases.items():
        if existing == key:
            return name
    name = f"audience_custom_{len(ctx.aliases)}"
    ctx.aliases[name] = (key, KeyTransform(key, "custom"))
    return name


def _compile_field(rule: FieldRule, ctx: Context) -> Q:
    kind = field_type(rule.field, ctx.definitions)
    custom = rule.field.startswith("custom.")
    name = _custom_alias(ctx, rule.field.removeprefix("custom.")) if custom else rule.field
    op, value = rule.op, rule.value
    if op in ("empty", "not_empty"):
        empty = Q(**{f"{name}__isnull": True})
        if custom:
            empty |= Q(**{name: None})
        if kind in ("text", "select"):
            empty |= Q(**{name: ""})
        return empty if op == "empty" else ~empty
    if kind in ("text", "select"):
        return _text_q(name, op, value)
    if kind == "number":
        if op == "not_equals":
            return Q(**{f"{name}__isnull": False}) & ~Q(**{name: value}) & ~Q(**{name: None})
        return Q(**{name if op == "equals" else f"{name}__{op}": value})
    if kind == "boolean":
        return Q(**{name: op == "is_true"})
    return _date_q(rule, name, kind, ctx)


def _text_q(name: str, op: str, value) -> Q:
    if op == "equals":
        return Q(**{f"{name}__iexact": value})
    if op == "not_equals":
        return ~Q(**{f"{name}__iexact": value})
    if op == "contains":
        return Q(**{f"{name}__icontains": value})
    if op == "not_contains":
        return ~Q(**{f"{name}__icontains": value})
    if op == "starts_with":
        return Q(**{f"{name}__istartswith": value})
    out = Q(pk__in=[])
    for item in value:  # "in"
        out |= Q(**{f"{name}__iexact": item})
    return out


def _date_q(rule: FieldRule, name: str, kind: str, ctx: Context) -> Q:
    today = ctx.now.astimezone(dt.UTC).date()
    op, value = rule.op, rule.value
    if kind == "datetime":
        if op in ("before", "after"):
            if op == "before":
                return Q(**{f"{name}__lt": dt.datetime.combine(_date(value), dt.time(),
                                                               tzinfo=dt.UTC)})
            return Q(**{f"{name}__gt": dt.datetime.combine(_date(value), dt.time.max,
                                                           tzinfo=dt.UTC)})
        moment = ctx.now - dt.timedelta(days=value)
        if op == "within_last_days":
            return Q(**{f"{name}__gte": moment, f"{name}__lte": ctx.now})
        return Q(**{f"{name}__lt": moment})
    key = rule.field.removeprefix("custom.")
    text = KeyTextTransform(key, "custom")
    as_date = Cast(text, DateField())
    if op == "anniversary_within_days":
        days = [today + dt.timedelta(days=n) for n in range(value + 1)]
        month_days = sorted({d.strftime("%m-%d") for d in days})
        if "02-28" in month_days and not _leap(today.year):
            month_days.append("02-29")  # birthdays on 29 February fall on the 28th
        return Q(In(Substr(text, 6, 5), month_days))
    if op in ("before", "after"):
        return _compare(as_date, "lt" if op == "before" else "gt", _date(value))
    boundary = today - dt.timedelta(days=value)
    if op == "within_last_days":
        return _compare(as_date, "gte", boundary) & _compare(as_date, "lte", today)
    return _compare(as_date, "lt", boundary)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_COMPARE = {"lt": LessThan, "lte": LessThanOrEqual, "gt": GreaterThan,
            "gte": GreaterThanOrEqual}


def _compare(expression, lookup: str, value) -> Q:
    return Q(_COMPARE[lookup](expression, value))


# --- showing rules to someone ---

def masked_json(data: Any, perms, definitions) -> Any:
    """The stored tree ``data`` as ``perms`` may see it: the values of conditions on fields
    they do not see in full (and of event property conditions, when personal data is not
    visible to them) replaced by the mask."""
    if isinstance(data, list):
        return [masked_json(item, perms, definitions) for item in data]
    if not isinstance(data, dict):
        return data
    out = {k: masked_json(v, perms, definitions) for k, v in data.items()}
    kind = data.get("type")
    if kind == "field" and data.get("value") is not None:
        try:
            lvl = visibility.field_level(perms, str(data.get("field")), definitions)
        except KeyError:
            lvl = visibility.HIDDEN
        if lvl != visibility.VISIBLE:
            out["value"] = visibility.MASK
    if kind == "event" and isinstance(data.get("where"), dict) and \
            visibility.level(perms, personal_data.PERSONAL) != visibility.VISIBLE:
        out["where"] = {**data["where"], "value": visibility.MASK}
    return out
