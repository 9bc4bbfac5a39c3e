"""A person as JSON, every personal field through the visibility formatter
(``people.visibility``) with the reader's permissions: a masked value comes back as the
formatter's masked text and is named in ``masked``; a hidden field is left out. The REST
API's responses and outgoing webhooks' payloads are both this.

Built-in fields are strings (the formatter's text, ``""`` when empty). Custom values
keep their JSON type (string, number, boolean, null) when visible — the formatter decides
the level, the API only declines to stringify a visible number — and are the masked
text when masked.
"""

from __future__ import annotations

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
