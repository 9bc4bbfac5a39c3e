"""What a person field may be sent as, over JSON: one JSON Schema per built-in field and
per custom field type, and the strict checks that go with them.

Used by the REST API (person write bodies and their document) and by ingest (an identify
event's ``fields``), so the OpenAPI document and the server agree: no coercion ("5" is
not a number, ``5`` is not a text), lengths counted as sent, null clears. The domain
rules after that (formats, options) are ``people.actions``'s cleaners; the patterns here
mirror them (Python's ``str.strip`` and the schema's ``\\s`` agree).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from enclave.people.actions import (
    CUSTOM_TEXT_MAX,
    EDITABLE,
    EMAIL_PATTERN,
    TEXT_LIMITS,
    time_zone_names,
)
from enclave.people.models import CONSENT_CHOICES

# Text the parsers accept (NUL is refused with a 400): every request string in the
# OpenAPI document carries this pattern.
NO_NUL = r"^[^\u0000]*$"
CUSTOM_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
CUSTOM_NUMBER_LIMIT = 10**15  # beyond it a float no longer holds every integer

# Every time-zone name, spelled out ("Europe/Paris" is one, "Europe/Pariss" is not); only
# "+" needs escaping ("Etc/GMT+5"), and escaping nothing else keeps the pattern valid in
# every regex dialect JSON-Schema tools use.
_ZONE_ALTERNATIVES = "|".join(name.replace("+", "\\+") for name in time_zone_names())

# What the actions accept for the built-in text fields (each value is stripped, then
# checked; blank clears), as schema rules.
PERSON_FIELD_RULES: dict[str, dict] = {
    "email": {"anyOf": [{"pattern": EMAIL_PATTERN}, {"pattern": r"^\s*$"}]},
    "phone": {"pattern": r"^\s*(\+[0-9 ()\-.]{2,30}[0-9()\-.]"
                         r"|[0-9()\-.][0-9 ()\-.]{1,29}[0-9()\-.])?\s*$"},
    "custom": {"propertyNames": {"type": "string", "pattern": CUSTOM_KEY_PATTERN,
                                 "description": "A custom field key of the account "
                                                "(GET /fields); an undefined key is a 422."}},
    "country": {"pattern": r"^\s*([A-Za-z]{2})?\s*$",
                "description": "ISO 3166 two-letter code; empty clears it."},
    "time_zone": {"pattern": rf"^\s*({_ZONE_ALTERNATIVES})?\s*$",
                  "description": 'An IANA time zone ("Europe/Paris"), used to send a '
                                 "broadcast at each person's local time; empty clears it."},
}

# The built-in fields an identify event sets through ``fields`` (email and external id
# name the person at the event's top level; tags are the event's own list).
IDENTIFY_FIELDS = tuple(f for f in EDITABLE if f not in ("email", "external_id"))


def builtin_value_schema(name: str) -> dict:
    """An identify event's value for built-in field ``name``: text as the people API
    takes it, or null (clears it, like "")."""
    if name == "ip":
        text = {"type": "string", "anyOf": [{"pattern": r"^\s*$"}, {"format": "ipv4"},
                                            {"format": "ipv6"}]}
    elif name == "consent":
        text = {"type": "string", "pattern": rf"^\s*({'|'.join(CONSENT_CHOICES)})?\s*$"}
    else:
        text = {"type": "string",
                "pattern": PERSON_FIELD_RULES.get(name, {}).get("pattern", NO_NUL)}
        if name in TEXT_LIMITS:
            text["maxLength"] = TEXT_LIMITS[name]
    return {"anyOf": [text, {"type": "null"}]}


def builtin_value_errors(values: Mapping) -> dict[str, list[str]]:
    """``key`` → message for each built-in identify value that is not text (or null) or
    is longer than its field takes, as sent. Other keys are left to the caller."""
    errors = {}
    for key, value in values.items():
        if key not in IDENTIFY_FIELDS or value is None:
            continue
        if not isinstance(value, str):
            errors[key] = ["Send a string, or null to clear it."]
        elif key in TEXT_LIMITS and len(value) > TEXT_LIMITS[key]:
            errors[key] = [f"At most {TEXT_LIMITS[key]} characters."]
    return errors


def custom_value_schema(definition) -> dict:
    """What is accepted for ``definition``'s value: its JSON type only (no coercion:
    "5" is not a number, "yes" not a boolean), or null to clear it."""
    return {**_typed(definition.type, tuple(definition.options or ())),
            "description": f"{definition.label} ({definition.type}); null clears it."}


def _typed(kind: str, options: tuple[str, ...]) -> dict:
    by_type = {
        "text": {"type": "string", "maxLength": CUSTOM_TEXT_MAX, "pattern": NO_NUL},
        "number": {"type": "number", "minimum": -CUSTOM_NUMBER_LIMIT,
                   "maximum": CUSTOM_NUMBER_LIMIT},
        "date": {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "boolean": {"type": "boolean"},
        "select": {"enum": list(options)},
    }
    return {"anyOf": [by_type[kind], {"type": "null"}]}


def custom_value_errors(values: Mapping, definitions: Iterable) -> dict[str, list[str]]:
    """``custom.<key>`` → message for each value (by custom key) its field's schema
    refuses. Unknown keys are left to the action, which names them."""
    by_key = {d.key: d for d in definitions}
    errors = {}
    for key, value in values.items():
        definition = by_key.get(key)
        if definition is None:
            continue
        if not _validator(definition.type, tuple(definition.options or ())).is_valid(value):
            errors[f"custom.{key}"] = [_CUSTOM_MESSAGES[definition.type].format(
                options=", ".join(definition.options), limit=CUSTOM_TEXT_MAX,
                number=CUSTOM_NUMBER_LIMIT)]
    return errors


@functools.lru_cache(maxsize=256)
def _validator(kind: str, options: tuple[str, ...]):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_typed(kind, options),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


_CUSTOM_MESSAGES = {
    "text": "Send a string of at most {limit} characters without NUL, or null.",
    "number": "Send a JSON number between -{number} and {number}, or null.",
    "date": "Send a date as a YYYY-MM-DD string, or null.",
    "boolean": "Send true or false (a JSON boolean), or null.",
    "select": "Send one of: {options}; or null.",
}


def identify_fields_schema(definitions: Iterable | None, max_fields: int) -> dict:
    """An identify event's ``fields`` object: the built-ins and, given the account's
    field ``definitions``, its custom fields as ``custom.<key>`` each with its type (any
    other key is refused); without them any custom key and any single value."""
    properties = {name: builtin_value_schema(name) for name in IDENTIFY_FIELDS}
    schema: dict = {"type": "object", "maxProperties": max_fields,
                    "additionalProperties": False, "properties": properties}
    if definitions is None:
        schema["patternProperties"] = {
            "^custom\\." + CUSTOM_KEY_PATTERN[1:]: {
                "type": ["string", "number", "boolean", "null"], "pattern": NO_NUL}}
        schema["description"] = ("Person fields: the built-ins and custom fields as "
                                 "custom.<key> (a key of the account; GET /fields).")
    else:
        properties.update({f"custom.{d.key}": custom_value_schema(d) for d in definitions})
        schema["description"] = ("Person fields: the built-ins and this account's custom "
                                 "fields as custom.<key>. Any other key is a 422.")
    return schema
