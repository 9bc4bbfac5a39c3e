"""The people list query: search, filters (fields, tag), sort and keyset pagination.

Search (``q``) matches the start of every field the member sees in full, ignoring case
(``istartswith``; on PostgreSQL each built-in field has a prefix index, migration 0002).

Shared by the web list and export (``views``) and the REST API, which import
``filtered_people`` / ``query_people`` from ``enclave.people.views``. Only fields the
member sees in full may be searched, filtered or sorted
(``visibility.require_visible``); anything else is a ``FieldNotQueryable`` (→ 400).
"""

from __future__ import annotations

import base64
import json

from django.db.models import F, FloatField, Q, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from enclave.core import jsondepth
from enclave.people import access, visibility

PAGE_SIZE = 50
# The list counts matches up to this many and then says "more than": an exact count of
# a million rows costs a full index scan on every page view.
COUNT_CAP = 10_000
LIST_PARAMS = {"q", "sort", "after", "cols", "archived", "tag"}
# Custom field types that free-text search covers (the others hold numbers, dates, yes/no).
SEARCHABLE_TYPES = ("text", "select")
SORT_ALIAS = "_sort_value"
NUMBER_FLOOR = -1e308  # people without a value sort first (ascending), as "" does for text


class BadQuery(Exception):
    """A list query that cannot be answered. ``str()`` is safe to show."""


def encode_cursor(value, pk: int) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        value = visibility.as_text(value)
    raw = json.dumps([value, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str | float, int]:
    try:
        # A crafted cursor may nest deeply: TooDeep is a ValueError, not a RecursionError.
        value, pk = jsondepth.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(value, bool) or not isinstance(value, str | int | float) \
                or not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError
    except (ValueError, TypeError):
        raise BadQuery("The page cursor is not valid; start from the first page.") from None
    return value, pk


def _definition(field: str, definitions):
    key = field.removeprefix("custom.")
    return next((d for d in definitions if d.key == key), None)


def custom_filter(field: str, raw: str, definitions) -> Q:
    """``custom.<key>=<value>``: the value converted by the field's type, then matched
    (text case-insensitively). BadQuery when the value does not fit the type."""
    from django.core.exceptions import ValidationError

    from enclave.people.actions import clean_custom_value

    definition = _definition(field, definitions)
    try:
        value = clean_custom_value(definition, raw)
    except ValidationError as exc:
        raise BadQuery(f"{field}: {' '.join(exc.messages)}") from None
    if value is None:
        return ~Q(custom__has_key=definition.key) | Q(**{f"custom__{definition.key}": None})
    if definition.type in SEARCHABLE_TYPES:
        return Q(**{f"custom__{definition.key}__iexact": value})
    return Q(**{f"custom__{definition.key}": value})


def filtered_people(ctx, params, definitions):
    """The account's people after search and filters — only visible fields may be used.

    Raises BadQuery or visibility.FieldNotQueryable (both → 400).
    """
    custom = {f"custom.{d.key}" for d in definitions}
    unknown = [k for k in params
               if k not in LIST_PARAMS and k not in visibility.FIELD_CLASSES and k not in custom]
    if unknown:
        raise BadQuery(f"Unknown parameter(s): {', '.join(sorted(unknown))}.")
    rows = access.people_of(ctx, include_archived=params.get("archived") == "1")
    for field in visibility.FIELD_CLASSES:
        if field in params:
            visibility.require_visible(ctx.perms, field, "filter", definitions)
            rows = rows.filter(**{f"{field}__iexact": params[field]})
    for field in sorted(custom & set(params)):
        visibility.require_visible(ctx.perms, field, "filter", definitions)
        rows = rows.filter(custom_filter(field, params[field], definitions))
    tag = " ".join(params.get("tag", "").split())
    if tag:
        # Tags of the member's own account only: another tenant's tag name matches
        # nothing, exactly like a name nobody uses.
        rows = rows.filter(person_tags__tag__account_id=ctx.account_id,
                           person_tags__tag__name=tag)
    q = params.get("q", "").strip()
    if q:
        cond = Q(pk__in=[])
        for field in visibility.QUERYABLE:
            if visibility.field_level(ctx.perms, field) == visibility.VISIBLE:
                cond |= Q(**{f"{field}__istartswith": q})
        for d in definitions:
            if d.type in SEARCHABLE_TYPES and visibility.queryable(ctx.perms, f"custom.{d.key}",
                                                                   definitions):
                cond |= Q(**{f"custom__{d.key}__istartswith": q})
        rows = rows.filter(cond)
    return rows


def _sort_expression(field: str, definitions):
    """(expression to order by, whether cursor values are numbers)."""
    if not field.startswith("custom."):
        return F(field), False
    definition = _definition(field, definitions)
    text = KT(f"custom__{definition.key}")
    if definition.type == "number":
        return Coalesce(Cast(text, FloatField()), Value(NUMBER_FLOOR),
                        output_field=FloatField()), True
    return Coalesce(Cast(text, TextField()), Value(""), output_field=TextField()), False


def query_people(ctx, params, definitions, *, count_cap: int | None = COUNT_CAP):
    """Search, filter and keyset-paginate. Returns (rows, next cursor or "", total).

    ``total`` counts at most ``count_cap + 1`` matches (``None``: exact), so a total
    above ``count_cap`` means "more than count_cap". Sorting by a custom field orders by
    its value (numbers numerically; people without a value first)."""
    rows = filtered_people(ctx, params, definitions)
    sort = params.get("sort", "id") or "id"
    field = sort.lstrip("-")
    if field != "id":
        visibility.require_visible(ctx.perms, field, "sort", definitions)
    desc = sort.startswith("-")
    total = rows.count() if count_cap is None else rows[:count_cap + 1].count()
    op = "lt" if desc else "gt"
    if field == "id":
        if params.get("after"):
            rows = rows.filter(**{f"pk__{op}": decode_cursor(params["after"])[1]})
        order = ["-pk" if desc else "pk"]
    else:
        expression, numeric = _sort_expression(field, definitions)
        rows = rows.annotate(**{SORT_ALIAS: expression})
        if params.get("after"):
            value, pk = decode_cursor(params["after"])
            if numeric != isinstance(value, int | float):
                raise BadQuery("The page cursor is not valid; start from the first page.")
            rows = rows.filter(Q(**{f"{SORT_ALIAS}__{op}": value})
                               | Q(**{SORT_ALIAS: value, f"pk__{op}": pk}))
        order = [f"-{SORT_ALIAS}", "-pk"] if desc else [SORT_ALIAS, "pk"]
    page = list(rows.order_by(*order)[:PAGE_SIZE + 1])
    cursor = ""
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        last = page[-1]
        cursor = encode_cursor(last.pk if field == "id" else getattr(last, SORT_ALIAS),
                               last.pk)
    return page, cursor, total
