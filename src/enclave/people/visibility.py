"""Personal-data visibility: the ONE table and the ONE formatter.

``FIELD_CLASSES`` gives every built-in field of a person its personal-data class, taken
from the one personal-data registry (``enclave.access.personal_data``); custom fields
carry theirs on ``FieldDefinition.pd_class``. :func:`level` turns a
member's permissions and a class into ``visible``, ``masked`` or ``hidden``:

=================  ===========  ======================  ==================================
class              visible      masked                  hidden
=================  ===========  ======================  ==================================
``none``           people.read  —                       without people.read
``personal``       people.write people.read only        without people.read
``sensitive``      people.write people.read otherwise   without people.read
                   + unmask
=================  ===========  ======================  ==================================

So the built-in roles get (``ROLE_VISIBILITY``, computed, asserted by tests): owner,
admin and user see everything; analyst sees ``none`` fields and masks the rest; viewer
sees no personal field at all (aggregates only). Custom roles follow the same rule
from their permissions. ``people.unmask`` lets a member reveal one masked value with a
reason (``actions.do_reveal_value``, audited).

Every surface — web pages, CSV export, audit views, the API — formats values through
:func:`display` / :func:`format_person`. Search, filter and sort accept only fields
that are ``visible`` (:func:`require_visible`), so a masked value cannot be guessed by
querying; counts are computed only over such filters.
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.access import personal_data
from enclave.access.permissions import ROLE_PERMISSIONS, Permission

VISIBLE, MASKED, HIDDEN = "visible", "masked", "hidden"

# The built-in fields a person shows, in display order, with their classes from the
# personal-data registry (the one place that says what is personal).
FIELD_LABELS: dict[str, str] = {
    "email": "Email", "first_name": "First name", "last_name": "Last name",
    "phone": "Phone", "address": "Address", "ip": "IP address", "company": "Company",
    "country": "Country", "time_zone": "Time zone", "external_id": "External id",
    "consent": "Consent",
    "created_at": "Created", "updated_at": "Updated",
}
FIELD_CLASSES: dict[str, str] = personal_data.classes_of("people.Person", FIELD_LABELS)
# Text fields that may be searched, filtered and sorted (when visible to the member).
QUERYABLE = ("email", "first_name", "last_name", "phone", "company", "country",
             "external_id", "consent")
MASK = "•••"


def level(perms, pd_class: str) -> str:
    """``visible`` / ``masked`` / ``hidden`` for a member with ``perms`` (see table)."""
    if Permission.PEOPLE_READ not in perms:
        return HIDDEN
    if pd_class == personal_data.NONE:
        return VISIBLE
    if pd_class == personal_data.PERSONAL:
        return VISIBLE if Permission.PEOPLE_WRITE in perms else MASKED
    if pd_class == personal_data.SENSITIVE:
        return (VISIBLE if {Permission.PEOPLE_WRITE, Permission.PEOPLE_UNMASK} <= set(perms)
                else MASKED)
    return HIDDEN  # unknown class (or a secret): fail closed


ROLE_VISIBILITY: dict[str, dict[str, str]] = {
    role: {cls: level(perms, cls) for cls in ("none", "personal", "sensitive")}
    for role, perms in ROLE_PERMISSIONS.items()
}


def field_class(field: str, definitions=None) -> str:
    """The class of a built-in field or ``custom.<key>``; KeyError when unknown."""
    if field.startswith("custom."):
        key = field.removeprefix("custom.")
        for definition in definitions or ():
            if definition.key == key:
                return definition.pd_class
        raise KeyError(field)
    return FIELD_CLASSES[field]


def field_level(perms, field: str, definitions=None) -> str:
    return level(perms, field_class(field, definitions))


# --- masking ---

def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    name, _, tld = domain.rpartition(".")
    if not local or not name:
        return MASK
    return f"{local[0]}***@{name[0]}***.{tld}"


def mask_phone(value: str) -> str:
    compact = "".join(ch for ch in value if ch.isdigit() or ch == "+")
    digits = compact.lstrip("+")
    if len(digits) < 6:
        return MASK
    prefix = f"+{digits[:2]} " if compact.startswith("+") else ""
    return f"{prefix}••• ••• {digits[-3:]}"


def mask_name(value: str) -> str:
    return f"{value[0]}***" if value else MASK


MASKERS = {"email": mask_email, "phone": mask_phone, "first_name": mask_name,
           "last_name": mask_name}


@dataclass(frozen=True)
class Shown:
    """One formatted value: what to print, and at which level."""

    field: str
    text: str
    level: str

    @property
    def hidden(self) -> bool:
        return self.level == HIDDEN


def raw_value(person, field: str):
    if field.startswith("custom."):
        key = field.removeprefix("custom.")
        if key in (person.custom or {}):
            return person.custom[key]
        if person.sealed_custom:
            from enclave.people.models import sealed_values

            return sealed_values(person).get(key)
        return None
    return getattr(person, field)


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def display(person, field: str, perms, definitions=None) -> Shown:
    """THE formatter: the value of ``field`` as the member may see it."""
    lvl = field_level(perms, field, definitions)
    if lvl == HIDDEN:
        return Shown(field, "", HIDDEN)
    text = as_text(raw_value(person, field))
    if lvl == MASKED:
        masker = MASKERS.get(field)
        text = masker(text) if masker and text else MASK
    return Shown(field, text, lvl)


def format_person(person, fields, perms, definitions=None) -> list[Shown]:
    return [display(person, f, perms, definitions) for f in fields]


def visible_fields(fields, perms, definitions=None) -> list[str]:
    """``fields`` minus those hidden from the member (columns to render)."""
    return [f for f in fields if field_level(perms, f, definitions) != HIDDEN]


class FieldNotQueryable(Exception):
    """Search/filter/sort on a field the member cannot see. ``str()`` is safe to show."""


def _custom_definition(field: str, definitions):
    key = field.removeprefix("custom.")
    return next((d for d in definitions or () if d.key == key), None)


def queryable(perms, field: str, definitions=None) -> bool:
    """Whether the member may search, filter and sort by ``field`` (no exception)."""
    try:
        require_visible(perms, field, "query", definitions)
    except FieldNotQueryable:
        return False
    return True


def require_visible(perms, field: str, purpose: str, definitions=None) -> None:
    """Raise FieldNotQueryable unless ``field`` is known, queryable and visible.

    Queryable: the built-in ``QUERYABLE`` fields and custom fields, except those
    encrypted at rest (the database holds only ciphertext)."""
    try:
        lvl = field_level(perms, field, definitions)
    except KeyError:
        raise FieldNotQueryable(f"Unknown field {field!r}.") from None
    if field.startswith("custom."):
        if _custom_definition(field, definitions).encrypt_at_rest:
            raise FieldNotQueryable(f"You cannot {purpose} by {field!r}: it is encrypted "
                                    "at rest.")
    elif field not in QUERYABLE:
        raise FieldNotQueryable(f"You cannot {purpose} by {field!r}.")
    if lvl != VISIBLE:
        raise FieldNotQueryable(
            f"You cannot {purpose} by {field!r}: it is {lvl} for your role.")
