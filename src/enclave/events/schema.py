"""The ingest payload, validated by msgspec (strict types, no unknown fields, size limits).

``parse(body)`` turns the raw request body into a :class:`Payload` of ``Track`` /
``Identify`` structs or raises :class:`jsondepth.TooDeep` (400: nested deeper than
``jsondepth.MAX_DEPTH``, checked before msgspec sees the body), :class:`PayloadError`
(400: not JSON / not an object) or :class:`EventErrors` (422: every bad field of every
event, keyed by position). Nothing here touches the database; checks that need the
account's custom fields happen in ``actions``.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from msgspec import Meta

from enclave.core import jsondepth
from enclave.people import values
from enclave.people.actions import EMAIL_PATTERN

MAX_EVENTS = 1000
MAX_BODY_BYTES = 1_048_576
MAX_PROPERTIES = 100
MAX_FIELDS = 100
MAX_TAGS = 50
# Properties nest at most this deep (the properties object is level 1); the whole body
# at most jsondepth.MAX_DEPTH.
MAX_PROPERTIES_DEPTH = jsondepth.MAX_STORED_DEPTH

MessageIdStr = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
# Names and ids must have a visible character ("  " would identify nobody).
EventName = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
PropertyKey = Annotated[str, Meta(min_length=1, max_length=128)]
Email = Annotated[str, Meta(min_length=3, max_length=254,
                            extra_json_schema={"pattern": EMAIL_PATTERN})]
ExternalId = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
FieldKey = Annotated[str, Meta(min_length=1, max_length=47)]
TagName = Annotated[str, Meta(min_length=1, max_length=50)]
Timestamp = Annotated[dt.datetime, Meta(tz=True)]
# A person field takes one value, never an object or a list.
Scalar = str | int | float | bool | None


class Track(msgspec.Struct, tag_field="type", tag="track", forbid_unknown_fields=True,
            frozen=True):
    """A named event with properties, optionally about a person (email or external id)."""

    event: EventName
    properties: Annotated[dict[PropertyKey, Any], Meta(max_length=MAX_PROPERTIES)] = {}
    email: Email | None = None
    external_id: ExternalId | None = None
    message_id: MessageIdStr | None = None
    timestamp: Timestamp | None = None


class Identify(msgspec.Struct, tag_field="type", tag="identify", forbid_unknown_fields=True,
               frozen=True):
    """Upsert a person (found by external id, else email) with fields and tags."""

    email: Email | None = None
    external_id: ExternalId | None = None
    fields: Annotated[dict[FieldKey, Scalar], Meta(max_length=MAX_FIELDS)] = {}
    tags: Annotated[list[TagName], Meta(max_length=MAX_TAGS)] = []
    message_id: MessageIdStr | None = None
    timestamp: Timestamp | None = None


AnyEvent = Track | Identify


class Batch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Up to 1,000 events, stored all together or not at all."""

    batch: Annotated[list[AnyEvent], Meta(min_length=1, max_length=MAX_EVENTS)]


class PayloadError(ValueError):
    """The body is not JSON, or not a JSON object (400 invalid-body)."""


class EventErrors(ValueError):
    """Field errors: ``errors`` maps a location (``batch.3.email``) to messages (422)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid events")
        self.errors = errors


_top = msgspec.json.Decoder(dict[str, msgspec.Raw])
_items = msgspec.json.Decoder(list[msgspec.Raw])
_batch = msgspec.json.Decoder(Annotated[list[AnyEvent], Meta(min_length=1,
                                                              max_length=MAX_EVENTS)])
_event = msgspec.json.Decoder(AnyEvent)
_INDEX = re.compile(r"\[(\d+)\]")
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


@dataclass(frozen=True)
class Payload:
    events: tuple[AnyEvent, ...]
    batched: bool


def parse(body: bytes) -> Payload:
    """Decode a single event object or ``{"batch": [...]}`` (1..1000 events)."""
    jsondepth.check(body)  # msgspec recurses per level: nothing deeper reaches it
    try:
        top = _top.decode(body)
    except msgspec.ValidationError:
        raise PayloadError("The body must be a JSON object: one event or {\"batch\": "
                           "[...]}.") from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"The body is not valid JSON: {exc}.") from None
    # NUL can only arrive as a \u0000 escape (a raw NUL is not valid JSON), so the walk
    # looking for it runs only when the body has one.
    nul = b"\\u0000" in body
    if "batch" not in top:
        return Payload((_decode_one(body, "", nul),), batched=False)
    unknown = sorted(set(top) - {"batch"})
    if unknown:
        raise EventErrors({k: ["Unknown field: a batch holds only \"batch\"."] for k in unknown})
    try:
        # Fast path: the whole batch in one C call. Any error: decode item by item below,
        # to report every bad event by position.
        fast = _batch.decode(top["batch"])
    except msgspec.ValidationError:
        fast = None
    if fast is not None:
        return Payload(_checked(fast, nul), batched=True)
    try:
        items = _items.decode(top["batch"])
    except msgspec.ValidationError:
        raise EventErrors({"batch": ["Expected an array of events."]}) from None
    if not items:
        raise EventErrors({"batch": ["Send at least one event."]})
    if len(items) > MAX_EVENTS:
        raise EventErrors({"batch": [f"At most {MAX_EVENTS} events per batch; got "
                                     f"{len(items)}. Split it into smaller batches."]})
    events, errors = [], {}
    for i, raw in enumerate(items):
        try:
            events.append(_decode_one(raw, f"batch.{i}", nul))
        except EventErrors as exc:
            errors.update(exc.errors)
    if errors:
        raise EventErrors(errors)
    return Payload(tuple(events), batched=True)


def _checked(events: list[AnyEvent], nul: bool) -> tuple[AnyEvent, ...]:
    errors = {}
    for i, event in enumerate(events):
        problem = _rules(event, nul)
        if problem:
            errors[_join(f"batch.{i}", problem[0])] = [problem[1]]
    if errors:
        raise EventErrors(errors)
    return tuple(events)


def _decode_one(raw: bytes | msgspec.Raw, where: str, nul: bool) -> AnyEvent:
    try:
        event = _event.decode(raw)
    except msgspec.ValidationError as exc:
        raise EventErrors({_location(where, exc)[0]: [_location(where, exc)[1]]}) from None
    problem = _rules(event, nul)
    if problem:
        raise EventErrors({_join(where, problem[0]): [problem[1]]})
    return event


def _rules(event: AnyEvent, nul: bool) -> tuple[str, str] | None:
    """(field, message) of the first rule ``event`` breaks beyond its type, or None."""
    problem = _check(event, nul) if nul or event.email or isinstance(event, Identify) \
        else None
    if problem is None and isinstance(event, Track) and event.properties \
            and not _shallow(event.properties):
        problem = ("properties",
                   f"Properties nest at most {MAX_PROPERTIES_DEPTH} levels deep.")
    return problem


def _check(event: AnyEvent, nul: bool) -> tuple[str, str] | None:
    """Rules msgspec cannot express: an identify names its person; emails are emails;
    no NUL characters (PostgreSQL text cannot hold them)."""
    if isinstance(event, Identify) and not (event.email or event.external_id):
        return "email", "An identify event needs an email or an external_id."
    if event.email is not None:
        try:
            if not re.fullmatch(EMAIL_PATTERN, event.email):
                raise ValidationError("outside the documented pattern")
            validate_email(event.email)
        except ValidationError:
            return "email", "Enter a valid email address."
    return _find_nul(msgspec.structs.asdict(event), "") if nul else None


def in_utc(value: dt.datetime) -> dt.datetime | None:
    """``value`` in UTC, or None when that falls outside years 1–9999
    (0001-01-01T00:00+14:00 is 1 BC: the database would store a time no reader can
    load)."""
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return None


def _shallow(value: Any, depth: int = 1) -> bool:
    """True when ``value`` nests at most MAX_PROPERTIES_DEPTH levels (flat properties: one
    pass)."""
    if depth > MAX_PROPERTIES_DEPTH:
        return False
    for item in (value.values() if type(value) is dict else value):
        if type(item) in _CONTAINERS and not _shallow(item, depth + 1):
            return False
    return True


_CONTAINERS = (dict, list)


def _find_nul(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        return (path, "Text may not contain NUL characters.") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path, "Keys may not contain NUL characters."
            found = _find_nul(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_nul(item, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


def _location(where: str, exc: msgspec.ValidationError) -> tuple[str, str]:
    match = _AT.match(str(exc))
    message, path = match["msg"], (match["path"] or "")
    if message.startswith("Object missing required field `type`"):
        return _join(where, "type"), "Give the event type: \"identify\" or \"track\"."
    if message.startswith("Invalid value") and path in ("", ".type"):
        return _join(where, "type"), "Unknown event type; use \"identify\" or \"track\"."
    field = re.search(r"field `([^`]+)`", message)
    if field and "unknown field" in message.lower():
        path = f"{path}.{field[1]}"
        message = "Unknown field."
    elif field and "missing required field" in message.lower():
        path = f"{path}.{field[1]}"
        message = "This field is required."
    # msgspec names list items [3] and dict values [...]; the API's keys are dotted.
    path = _INDEX.sub(r".\1", path.replace("[...]", ""))
    return _join(where, path.lstrip(".")), message


def _join(where: str, path: str) -> str:
    """``batch.3`` + ``email`` → ``batch.3.email`` (the REST API's dotted error keys)."""
    if not where:
        return path or "body"
    return f"{where}.{path}" if path else where


def openapi_request_schema() -> dict:
    """The request body as an OpenAPI 3.1 schema (derived from the structs above, so the
    documentation cannot drift from the validation), with the rules msgspec does not
    carry: no NUL in any text or key, ``properties`` nested at most
    MAX_PROPERTIES_DEPTH levels (values refer to :func:`openapi_components`)."""
    (event, batch), components = msgspec.json.schema_components([AnyEvent, Batch])
    resolved = {name: _oas31(schema, components) for name, schema in components.items()}
    track = resolved["Track"]["properties"]["properties"]
    track["propertyNames"] = {**track.get("propertyNames", {}), "pattern": values.NO_NUL}
    track["additionalProperties"] = _value_ref(2)
    # An identify event names its person (the rule _check enforces): one whole object
    # schema per way of naming it, that name's text required (a sibling "anyOf" beside
    # "properties" was not honoured by schemathesis's coverage phase, which sent both
    # as null).
    identify = resolved["Identify"]
    identify["properties"]["fields"] = {"$ref": f"#/components/schemas/{FIELDS_COMPONENT}"}
    resolved["Identify"] = {
        "title": identify.pop("title"), "description": identify.pop("description"),
        "anyOf": [_naming(identify, name) for name in ("email", "external_id")]}
    # The batch's items are the same event schemas: resolved again from msgspec's raw
    # component so they carry the rules added above (the first pass inlined the plain
    # ones, and a batched identify naming no one was documented as valid).
    resolved["Batch"] = _oas31(components["Batch"], resolved)
    return {"oneOf": [*_oas31(event, resolved)["anyOf"], _oas31(batch, resolved)]}


def _naming(identify: dict, name: str) -> dict:
    """``identify`` with ``name`` required and given as text (its non-null form)."""
    variant = copy.deepcopy(identify)
    variant["required"] = [*variant.get("required", []), name]
    text = [o for o in variant["properties"][name]["anyOf"] if o.get("type") == "string"]
    variant["properties"][name] = text[0]
    return variant


VALUE_COMPONENT = "EventPropertyValue"
FIELDS_COMPONENT = "IdentifyFields"


def _value_ref(depth: int) -> dict:
    return {"$ref": f"#/components/schemas/{VALUE_COMPONENT}"}


def openapi_components(definitions=None) -> dict[str, dict]:
    """Components the request schema refers to. ``IdentifyFields``: an identify's
    ``fields`` (with the account's field ``definitions``, its custom fields typed).
    ``EventPropertyValue``: any JSON value without NUL in text or keys — one
    self-referring component, not one per level: a depth-bounded chain
    (MAX_PROPERTIES_DEPTH levels) made schemathesis's coverage phase enumerate for 15
    minutes. The bound is in the description; deeper is a 422."""
    return {FIELDS_COMPONENT: values.identify_fields_schema(definitions, MAX_FIELDS),
            VALUE_COMPONENT: {
        "description": f"Any JSON value; properties nest at most {MAX_PROPERTIES_DEPTH} "
                       "levels (deeper is a 422).",
        "anyOf": [{"type": ["string", "number", "boolean", "null"], "pattern": values.NO_NUL},
                  {"type": "array", "items": _value_ref(0)},
                  {"type": "object", "propertyNames": {"pattern": values.NO_NUL},
                   "additionalProperties": _value_ref(0)}]}}


def _oas31(node: Any, components: dict) -> Any:
    """msgspec's JSON Schema 2020-12 for the document: refs inlined (one request body,
    no component names), discriminators (ref-only) dropped, tag enums typed."""
    if isinstance(node, list):
        return [_oas31(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and node["$ref"].startswith("#/$defs/"):
        return _oas31(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {k: _oas31(v, components) for k, v in node.items()
           if k not in ("discriminator", "$defs")}
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out
