"""The ingest payload, validated by msgspec (strict types, no unknown fields, size limits).

``parse(body)`` turns the raw request body into a :class:`Payload` of ``Track`` /
``Identify`` structs or raises :class:`PayloadError` (400: not JSON / not an object) or
:class:`EventErrors` (422: every bad field of every event, keyed by position). Nothing
here touches the database; checks that need the account's custom fields happen in
``actions``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from msgspec import Meta

MAX_EVENTS = 1000
MAX_BODY_BYTES = 1_048_576
MAX_PROPERTIES = 100
MAX_FIELDS = 100
MAX_TAGS = 50
MAX_DEPTH = 16  # nesting of properties (as the REST API's parser allows)

MessageIdStr = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]
# Names and ids must have a visible character ("  " would identify nobody).
EventName = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
PropertyKey = Annotated[str, Meta(min_length=1, max_length=128)]
Email = Annotated[str, Meta(min_length=3, max_length=254,
                            extra_json_schema={"format": "email"})]
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
    try:
        top = _top.decode(body)
    except RecursionError:
        raise EventErrors({"body": ["Nested too deeply."]}) from None
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
    except (msgspec.ValidationError, RecursionError):
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
    except RecursionError:
        raise EventErrors({_join(where, "properties"): ["Nested too deeply."]}) from None
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
        problem = ("properties", f"Properties nest at most {MAX_DEPTH} levels deep.")
    return problem


def _check(event: AnyEvent, nul: bool) -> tuple[str, str] | None:
    """Rules msgspec cannot express: an identify names its person; emails are emails;
    no NUL characters (PostgreSQL text cannot hold them)."""
    if isinstance(event, Identify) and not (event.email or event.external_id):
        return "email", "An identify event needs an email or an external_id."
    if event.email is not None:
        try:
            validate_email(event.email)
        except ValidationError:
            return "email", "Enter a valid email address."
    return _find_nul(msgspec.structs.asdict(event), "") if nul else None


def _shallow(value: Any, depth: int = 1) -> bool:
    """True when ``value`` nests at most MAX_DEPTH levels (flat properties: one pass)."""
    if depth > MAX_DEPTH:
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
    """The request body as an OpenAPI 3.0 schema (derived from the structs above, so the
    documentation cannot drift from the validation)."""
    (event, batch), components = msgspec.json.schema_components([AnyEvent, Batch])
    resolved = {name: _oas30(schema, components) for name, schema in components.items()}
    return {"oneOf": [*_oas30(event, resolved)["oneOf"], _oas30(batch, resolved)]}


def _oas30(node: Any, components: dict) -> Any:
    """JSON Schema 2020-12 (msgspec) → OpenAPI 3.0: refs inlined, ``null`` as nullable,
    ``propertyNames`` dropped, tag enums typed, discriminators (ref-only) dropped."""
    if isinstance(node, list):
        return [_oas30(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _oas30(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {k: _oas30(v, components) for k, v in node.items()
           if k not in ("propertyNames", "discriminator", "$defs")}
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "anyOf" in out:
        options = [o for o in out.pop("anyOf") if o.get("type") != "null"]
        if len(options) < len(node["anyOf"]):
            out["nullable"] = True
        if len(options) == 1:
            out.update(options[0])
        else:
            # Tagged event objects exclude each other (oneOf); scalar types need not.
            exclusive = all(o.get("type") == "object" for o in options)
            out["oneOf" if exclusive else "anyOf"] = options
    return out
