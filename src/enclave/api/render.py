"""JSON for API responses. Every personal field goes through the visibility formatter
(``people.visibility.display``) with the key's permissions: a masked value comes back
as the formatter's masked text and is named in ``masked``; a hidden field is left out.

Built-in fields are strings (the formatter's text, ``""`` when empty). Custom values
keep their JSON type (string, number, boolean, null) when visible — the formatter decides
the level, the API only declines to stringify a visible number — and are the masked
text when masked.
"""

from __future__ import annotations

from enclave.api.errors import InvalidQuery
from enclave.people import visibility
from enclave.people.models import PersonTag

BUILTIN_FIELDS = tuple(visibility.FIELD_CLASSES)


def person_json(person, perms, definitions, tags: list[str]) -> dict:
    out: dict = {"id": person.pk}
    masked: list[str] = []
    for shown in visibility.format_person(person, BUILTIN_FIELDS, perms, definitions):
        if shown.hidden:
            continue
        out[shown.field] = shown.text
        if shown.level == visibility.MASKED:
            masked.append(shown.field)
    custom: dict = {}
    for definition in definitions:
        field = f"custom.{definition.key}"
        shown = visibility.display(person, field, perms, definitions)
        if shown.hidden:
            continue
        if shown.level == visibility.MASKED:
            custom[definition.key] = shown.text
            masked.append(field)
        else:
            custom[definition.key] = visibility.raw_value(person, field)
    out["archived_at"] = person.archived_at.isoformat() if person.archived_at else None
    out["custom"] = custom
    out["tags"] = sorted(tags)
    out["masked"] = masked
    return out


def tags_of(people) -> dict[int, list[str]]:
    """Tag names per person id, in one query."""
    out: dict[int, list[str]] = {p.pk: [] for p in people}
    for person_id, name in PersonTag.objects.filter(person__in=[p.pk for p in people]) \
            .values_list("person_id", "tag__name"):
        out[person_id].append(name)
    return out


# --- cursors: the last id seen, in decimal ---
# A cursor's shape is documented (1–18 digits, the OpenAPI pattern), so every cursor the
# document calls valid is one the server takes: a client may build one, and one it did not
# get from us simply continues after that id.

def encode_cursor(last_id: int) -> str:
    return str(last_id)


def decode_cursor(token: str) -> int:
    """The id a cursor continues after; InvalidQuery unless it is 1–18 ASCII digits."""
    if not (token.isascii() and token.isdigit() and len(token) <= 18):
        raise InvalidQuery("The cursor is not valid (1-18 digits: the next_cursor of the "
                           "previous page); start again from the first page.")
    return int(token)


def page_limit(raw: str | None, default: int = 50, maximum: int = 200) -> int:
    """``limit`` from the query: absent → ``default``; present, it must be 1–``maximum``
    (an empty ``limit=`` is not a number: 400, as the schema says)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise InvalidQuery(f"limit must be a whole number from 1 to {maximum}.")
    return int(raw)
