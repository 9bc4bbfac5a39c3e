"""The tracking spec (Segment / RudderStack HTTP API) read into Enclave's ingest.

``read(body, content_encoding, call)`` turns a request body of ``/api/ingest/v1/<call>``
into a :class:`Parsed` batch of :class:`Message` structs, or raises
:class:`jsondepth.TooDeep`, :class:`BodyError` (not JSON, bad gzip, too large) or
``schema.EventErrors`` (every bad field of every message, by position). ``items(parsed,
now, custom_keys)`` maps the messages onto what ``events.actions.do_ingest_spec``
stores: who each message is about (a ``schema.Track`` / ``schema.Identify``, so the
people rules are exactly native ingest's), the stored row, and the anonymous id to link.

The spec's rules (https://segment.com/docs/connections/spec/): every call names a
``userId`` or an ``anonymousId``; ``track`` needs ``event``; ``alias`` needs
``previousId``; ``group`` needs ``groupId``. Unknown members (``integrations``,
``channel``, ``writeKey``...) are ignored, as the SDKs send many. Limits as the SDKs
enforce them: 32 KB per message, 500 KB per batch (after gzip is undone), and at most
2,500 messages per batch. Nothing here touches the database.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import zlib
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from msgspec import Meta

from enclave.core import jsondepth
from enclave.events import schema
from enclave.events.schema import EventErrors, Identify, Track
from enclave.people.actions import EMAIL_PATTERN

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# The spec limits bytes only; tiny calls could make 500 KB ten thousand of them, one
# transaction's worth of statements. The SDKs flush at most a few hundred at a time.
MAX_MESSAGES = 2500
CALLS = ("identify", "track", "page", "screen", "group", "alias")
ID_MAX = 100

# Traits that name a person's built-in field (the spec's reserved traits, camelCase as
# the SDKs send them, and our own snake_case names). Any other trait whose key is one of
# the account's custom fields sets that field (``custom.<key>``).
TRAIT_FIELDS = {
    "firstName": "first_name", "first_name": "first_name",
    "lastName": "last_name", "last_name": "last_name",
    "phone": "phone", "company": "company", "address": "address",
    "timezone": "time_zone", "time_zone": "time_zone",
}
_ADDRESS_PARTS = ("street", "city", "postalCode", "postal_code", "state", "country")

# Ids are text; the SDKs may send numbers (whole, within 64 bits), taken as text.
AnyId = str | Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | float
# Times as RFC 3339 text with an offset, read by msgspec after this strict shape check
# (msgspec alone also takes a space for the "T" and times without an offset).
RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                     r"([Zz]|[+-][0-9]{2}:[0-9]{2})")
Name = Annotated[str, Meta(max_length=200)]
Props = dict[str, Any]


class Message(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """One call of the spec. Unknown members are ignored (the SDKs add their own)."""

    type: str | None = None
    message_id: str | None = None
    user_id: AnyId | None = None
    anonymous_id: AnyId | None = None
    previous_id: AnyId | None = None
    group_id: AnyId | None = None
    event: str | None = None
    name: Name | None = None
    category: Name | None = None
    properties: Props | None = None
    traits: Props | None = None
    context: Props | None = None
    timestamp: str | None = None
    original_timestamp: str | None = None
    sent_at: str | None = None


class _Batch(msgspec.Struct, frozen=True, rename="camel"):
    batch: list[msgspec.Raw]
    sent_at: str | None = None
    context: Props | None = None


class BodyError(ValueError):
    """The body cannot be read: not JSON, not an object, bad gzip (400)."""


class TooLarge(ValueError):
    """Over 500 KB in all or 32 KB for one message (413)."""


@dataclass(frozen=True)
class Parsed:
    messages: tuple[tuple[Message, dict[str, dt.datetime]], ...]  # with its times read
    sent_at: dt.datetime | None
    context: dict
    batched: bool


@dataclass(frozen=True, slots=True)
class Item:
    """A message as ingest stores it. ``event`` says who it is about (its email /
    external id, fields for an identify), its message id and time; ``link`` is an
    anonymous id to link to that person ("" for none)."""

    event: Track | Identify
    type: str
    name: str
    properties: dict
    context: dict
    anonymous_id: str
    link: str


_batch = msgspec.json.Decoder(_Batch)
_message = msgspec.json.Decoder(Message)
_top = msgspec.json.Decoder(dict[str, msgspec.Raw])


def inflate(body: bytes, content_encoding: str) -> bytes:
    """The body with its ``Content-Encoding`` (gzip, or none) undone, at most
    MAX_BATCH_BYTES. Raises BodyError (bad gzip, unknown encoding) or TooLarge."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > MAX_BATCH_BYTES:
            raise TooLarge(f"A request body may be at most {MAX_BATCH_BYTES} bytes.")
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise BodyError(f"Unsupported Content-Encoding {encoding!r}; send gzip or none.")
    # Decompress in bounded steps: a small bomb never expands past the limit in memory.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_BATCH_BYTES + 1)
        if len(out) > MAX_BATCH_BYTES or inflater.unconsumed_tail:
            raise TooLarge(f"The decompressed body may be at most {MAX_BATCH_BYTES} bytes.")
        if not inflater.eof:
            raise BodyError("The gzip body is truncated.")
        if inflater.unused_data:
            raise BodyError("The body has data after its gzip stream.")
    except zlib.error as exc:
        raise BodyError(f"The body is not valid gzip: {exc}.") from None
    return out


def read(body: bytes, call: str) -> Parsed:
    """Decode ``body`` (already inflated) for ``call`` (``batch`` or one of CALLS)."""
    jsondepth.check(body)
    try:
        top = _top.decode(body)
    except msgspec.ValidationError:
        raise BodyError("The body must be a JSON object.") from None
    except msgspec.DecodeError as exc:
        raise BodyError(f"The body is not valid JSON: {exc}.") from None
    if call != "batch":
        if len(body) > MAX_MESSAGE_BYTES:
            raise TooLarge(f"A message may be at most {MAX_MESSAGE_BYTES} bytes.")
        message = _decode(body, "")
        if message.type and "\x00" in message.type:  # read, then replaced by the path's
            raise EventErrors({"type": ["Text may not contain NUL characters."]})
        if message.type != call:
            message = msgspec.structs.replace(message, type=call)
        return Parsed((_checked(message, ""),), None, {}, batched=False)
    if "batch" not in top:
        raise EventErrors({"batch": ["Send the messages as {\"batch\": [...]}."]})
    try:
        outer = _batch.decode(body)
    except msgspec.ValidationError as exc:
        raise EventErrors({schema._location("", exc)[0]: [schema._location("", exc)[1]]}
                          ) from None
    errors: dict[str, list[str]] = {}
    nul = b"\\u0000" in body
    sent_at = _time(outer.sent_at, "sentAt", errors)
    found = outer.context and schema._find_nul(outer.context, "context")
    if found:
        errors[found[0]] = [found[1]]
    if errors:
        raise EventErrors(errors)
    if not outer.batch:
        raise EventErrors({"batch": ["Send at least one message."]})
    if len(outer.batch) > MAX_MESSAGES:
        raise EventErrors({"batch": [f"At most {MAX_MESSAGES} messages per batch; got "
                                     f"{len(outer.batch)}. Flush more often."]})
    for i, raw in enumerate(outer.batch):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise TooLarge(f"Message {i} is over {MAX_MESSAGE_BYTES} bytes; a message may "
                           f"be at most {MAX_MESSAGE_BYTES} bytes.")
    messages = []
    for i, raw in enumerate(outer.batch):
        where = f"batch.{i}"
        try:
            messages.append(_checked(_decode(raw, where), where, nul))
        except EventErrors as exc:
            errors.update(exc.errors)
    if errors:
        raise EventErrors(errors)
    return Parsed(tuple(messages), sent_at, outer.context or {}, batched=True)


def _decode(raw, where: str) -> Message:
    try:
        return _message.decode(raw)
    except msgspec.ValidationError as exc:
        path, message = schema._location(where, exc)
        raise EventErrors({path: [message]}) from None


def _time(value: str | None, name: str, errors: dict) -> dt.datetime | None:
    """``value`` read as an RFC 3339 time with its offset; an error under ``name``."""
    if value is None:
        return None
    if RFC3339.fullmatch(value):
        try:
            return msgspec.convert(value, dt.datetime)
        except msgspec.ValidationError:
            pass
    errors[name] = ["Give an RFC 3339 time with its offset (2026-01-31T12:00:00Z)."]
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_IDS = {name: _camel(name) for name in ("user_id", "anonymous_id", "previous_id",
                                         "group_id", "message_id")}
_TIMES = {name: _camel(name) for name in ("timestamp", "original_timestamp", "sent_at")}
_ID_NAMES = tuple(_IDS.items())


def _checked(message: Message, where: str, nul: bool = True
             ) -> tuple[Message, dict[str, dt.datetime]]:
    """``message`` with its ids as text, and its times read; EventErrors listing what
    breaks the spec. Members Enclave does not read are not looked at. ``nul``: the body
    holds a ``\\u0000`` escape (the only way NUL arrives), so the values are searched."""
    errors: dict[str, list[str]] = {}

    def bad(name: str, text: str) -> None:
        errors[schema._join(where, name)] = [text]

    ids = {}
    for name, camel in _ID_NAMES:
        value = getattr(message, name)
        # The common case first: text that is already as stored (one visible character at
        # each end, short, no NUL) needs nothing more.
        if value is None or (type(value) is str and 0 < len(value) <= ID_MAX
                             and not value[0].isspace() and not value[-1].isspace()
                             and "\x00" not in value):
            continue
        if isinstance(value, float):
            if not value.is_integer() or abs(value) >= 2**63:
                bad(camel, "An id is text or a whole number.")
                continue
            value = int(value)
        text = value if type(value) is str else str(value)
        stripped = text.strip()
        if "\x00" in text:
            bad(camel, "Text may not contain NUL characters.")
        elif not stripped:
            bad(camel, "An id needs a visible character (or leave it out).")
        elif len(text) > ID_MAX:
            bad(camel, f"At most {ID_MAX} characters.")
        elif stripped is not value:
            ids[name] = stripped
    found: dict[str, list[str]] = {}
    times = {}
    for name, camel in _TIMES.items():
        value = getattr(message, name)
        if value is not None:
            times[name] = _time(value, camel, found)
    for name, messages in found.items():
        bad(name, messages[0])
    if message.type not in CALLS:
        bad("type", f"Unknown call type; use one of: {', '.join(CALLS)}.")
    if message.user_id is None and message.anonymous_id is None:
        bad("userId", "Every call needs a userId or an anonymousId.")
    if message.type == "track":
        event = (message.event or "").strip()
        if not event:
            bad("event", "A track call needs the event name.")
        elif len(message.event) > 200:
            bad("event", "At most 200 characters.")
    if message.type == "alias":
        # An alias naming the same id twice only links that id to its own person:
        # harmless, so accepted (ids are linked one hop to a person, never chained).
        if message.previous_id is None:
            bad("previousId", "An alias call needs previousId.")
        if message.user_id is None:
            bad("userId", "An alias call needs userId.")
    if message.type == "group" and message.group_id is None:
        bad("groupId", "A group call needs groupId.")
    for name in ("properties", "traits", "context"):
        value = getattr(message, name)
        if value and not schema._shallow(value):
            bad(name, f"Nested at most {schema.MAX_PROPERTIES_DEPTH} levels deep.")
    # NUL (only ever an escape) in anything Enclave keeps: PostgreSQL text cannot hold it.
    for name in ("type", "event", "name", "category", "properties", "traits",
                 "context") if nul else ():
        value = getattr(message, name)
        found_nul = value and schema._find_nul(value, name)
        if found_nul:
            bad(found_nul[0], found_nul[1])
            break
    if errors:
        raise EventErrors(errors)
    if ids:
        message = msgspec.structs.replace(message, **ids)
    return message, {k: v for k, v in times.items() if v}


# --- browser keys -----------------------------------------------------------------------
# A browser key is public (it is in the site's pages), so what it can do is narrow
# (docs/sdks.md, "Website tracking"): page, track and identify only; the visitor's
# consent on every call when its key requires it; people named by userId only (never by
# an email trait, which would let anyone attach their visit to someone's address); and
# traits — in identify or in context — set no field of an existing person.
BROWSER_CALLS = ("page", "track", "identify")
CONSENT_CATEGORY = "analytics"


class CallNotAllowed(ValueError):
    """A browser key sent a call it may not make (403). ``str()`` is safe to show."""


def write_key(body: bytes) -> str | None:
    """The ``writeKey`` member of a (inflated) body — how browser libraries send the key,
    without an Authorization header (which would need a CORS preflight). None when the
    body holds none (or is not a JSON object: the call's own reading reports that)."""
    try:
        jsondepth.check(body)
        raw = _top.decode(body).get("writeKey")
        value = raw is not None and msgspec.json.decode(raw)
    except (jsondepth.TooDeep, msgspec.DecodeError):
        return None
    return value if isinstance(value, str) and value else None


def consented(context: dict | None) -> bool:
    """The call carries the visitor's consent to analytics: the spec's consent object,
    ``context.consent.categoryPreferences`` with ``analytics`` (any case) true."""
    consent = (context or {}).get("consent")
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(preferences, dict):
        return False
    return any(k.lower() == CONSENT_CATEGORY and v is True for k, v in preferences.items()
               if isinstance(k, str))


def for_browser(parsed: Parsed, *, require_consent: bool, fill_new: bool) -> Parsed:
    """``parsed`` as a browser key may send it: CallNotAllowed for a call other than
    page, track and identify; EventErrors for a call without consent when the key
    requires it; context traits removed; an identify's traits kept only when it names a
    userId and ``fill_new`` (they then set the fields of a person the call creates)."""
    refused = [i for i, (m, _) in enumerate(parsed.messages) if m.type not in BROWSER_CALLS]
    if refused:
        where = f"message {refused[0]}" if parsed.batched else "this call"
        raise CallNotAllowed(f"A browser key may send page, track and identify calls only; "
                             f"{where} is {parsed.messages[refused[0]][0].type}. Send the "
                             "others from your servers with a server key.")
    if require_consent:
        errors = {}
        for i, (message, _) in enumerate(parsed.messages):
            if not consented({**parsed.context, **(message.context or {})}):
                errors[schema._join(f"batch.{i}" if parsed.batched else "",
                                    "context.consent")] = [
                    "This key sends only with the visitor's consent: "
                    "context.consent.categoryPreferences.analytics must be true."]
        if errors:
            raise EventErrors(errors)
    messages = []
    for message, times in parsed.messages:
        context = message.context
        if context and "traits" in context:
            context = {k: v for k, v in context.items() if k != "traits"}
        traits = message.traits if (message.type == "identify" and fill_new
                                    and message.user_id is not None) else None
        if context is not message.context or traits is not message.traits:
            message = msgspec.structs.replace(message, context=context, traits=traits)
        messages.append((message, times))
    top = {k: v for k, v in parsed.context.items() if k != "traits"}
    return Parsed(tuple(messages), parsed.sent_at, top, parsed.batched)


# --- mapping onto ingest ---------------------------------------------------------------

def occurred_at(times: dict[str, dt.datetime], batch_sent_at: dt.datetime | None,
                now: dt.datetime) -> dt.datetime | None:
    """When it happened, the client's clock corrected as the spec does:
    ``received - (sentAt - originalTimestamp)`` when the client said when it sent; never
    later than ``now``. None (meaning: when received) without a timestamp, or when the
    result is outside the calendar's range in UTC."""
    base = times.get("original_timestamp") or times.get("timestamp")
    if base is None:
        return None
    sent = times.get("sent_at") or batch_sent_at
    if sent is not None:
        try:
            base = now - (sent - base)
        except OverflowError:
            return None
    base = schema.in_utc(base)
    return None if base is None else min(base, now)


def _email(traits: dict) -> str | None:
    value = traits.get("email")
    if not isinstance(value, str) or not 3 <= len(value) <= 254 \
            or not re.fullmatch(EMAIL_PATTERN, value):
        return None
    try:
        validate_email(value)
    except ValidationError:
        return None
    return value


def person_fields(traits: dict, custom_keys: frozenset[str]) -> tuple[dict, set[str]]:
    """The identify ``fields`` that ``traits`` set (built-in names and ``custom.<key>``),
    and the trait keys used (they live on the person, not on the stored event)."""
    fields, used = {}, {"email"}
    for key, value in traits.items():
        target = TRAIT_FIELDS.get(key)
        if target is not None:
            used.add(key)
            value = _text(key, value)
            if value is not None:
                fields[target] = value
        elif key in custom_keys:
            used.add(key)
            if isinstance(value, str | int | float | bool) or value is None:
                fields[f"custom.{key}"] = value
    return fields, used


def _text(key: str, value: Any) -> str | None:
    """A built-in field's text from a trait (the spec's company and address may be
    objects); None when the trait holds no usable text."""
    if key == "company" and isinstance(value, dict):
        value = value.get("name")
    if key == "address" and isinstance(value, dict):
        value = ", ".join(str(value[p]).strip() for p in _ADDRESS_PARTS
                          if isinstance(value.get(p), str | int) and str(value[p]).strip())
    return value if isinstance(value, str) else None


def items(parsed: Parsed, now: dt.datetime, custom_keys: frozenset[str]) -> list[Item]:
    """Each message as ingest stores it (see :class:`Item`)."""
    return [_item(m, times, parsed, now, custom_keys) for m, times in parsed.messages]


def _item(message: Message, times: dict[str, dt.datetime], parsed: Parsed,
          now: dt.datetime, custom_keys: frozenset[str]) -> Item:
    when = occurred_at(times, parsed.sent_at, now)
    user = message.user_id
    anonymous = message.anonymous_id or ""
    context = {**parsed.context, **(message.context or {})}
    # The person's own traits in context are identify data, not context to keep
    # (RudderStack's SDKs send an identify's traits there).
    context_traits = context.pop("traits", None)
    properties = dict(message.properties or {})
    name, link = "", anonymous
    about: Track | Identify
    if message.type == "identify":
        traits = {**(context_traits if isinstance(context_traits, dict) else {}),
                  **(message.traits or {})}
        email = _email(traits)
        fields, used = person_fields(traits, custom_keys)
        if user or email:
            properties = {k: v for k, v in traits.items() if k not in used}
            about = Identify(email=email, external_id=user, fields=fields,
                             message_id=message.message_id, timestamp=when)
        else:
            # No person to set them on: the traits stay on the event, except values of
            # custom fields (one may be encrypted at rest, never stored in clear).
            properties = {k: v for k, v in traits.items() if k not in custom_keys}
            about = Track(event="", message_id=message.message_id, timestamp=when)
    else:
        if message.type == "track":
            name = message.event.strip()
        elif message.type in ("page", "screen"):
            name = (message.name or "").strip()
            if message.category and "category" not in properties:
                properties["category"] = message.category
        elif message.type == "group":
            properties = {**(message.traits or {}), "groupId": message.group_id}
        elif message.type == "alias":
            properties = {"previousId": message.previous_id}
            link = message.previous_id
        about = Track(event=name, external_id=user, message_id=message.message_id,
                      timestamp=when)
    return Item(about, message.type, name, properties, context, anonymous, link)


# --- the OpenAPI document --------------------------------------------------------------
# Written from the rules above (``_checked``): tests/api/test_contract.py holds the server
# to it with schemathesis, so each rule here is one the server enforces.

_VALUE = {"$ref": f"#/components/schemas/{schema.VALUE_COMPONENT}"}
_ID = {"anyOf": [{"type": "string", "maxLength": ID_MAX, "pattern": r"\S"},
                 {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}]}
# Members Enclave does not read (integrations, channel, writeKey...): anything.
_IGNORED = True
_OPTIONAL_ID = {"anyOf": [*_ID["anyOf"], {"type": "null"}]}
_TIME = {"type": ["string", "null"], "format": "date-time",
         "pattern": f"^{RFC3339.pattern}$", "description": "RFC 3339 with an offset."}
_OBJECT = {"type": ["object", "null"], "additionalProperties": _VALUE,
           "description": f"Nested at most {schema.MAX_PROPERTIES_DEPTH} levels (deeper is "
                          "a 422)."}
_TEXT = {"type": ["string", "null"], "maxLength": 200}
_REQUIRES = {"track": ("event",), "group": ("groupId",), "alias": ("previousId", "userId")}


_VISIBLE = {"type": "string", "maxLength": 200, "pattern": r"\S"}


def _message_properties(typed: str | None) -> dict:
    """Every member ``Message`` reads, typed as it reads them (in any call: a page's
    ``event`` is read, and ignored, so its type still counts)."""
    return {
        "type": {"const": typed} if typed else {"type": ["string", "null"]},
        "messageId": {"type": ["string", "null"], "maxLength": ID_MAX, "pattern": r"\S"},
        "userId": _OPTIONAL_ID, "anonymousId": _OPTIONAL_ID, "previousId": _OPTIONAL_ID,
        "groupId": _OPTIONAL_ID,
        "event": {"type": ["string", "null"]},
        "name": _TEXT, "category": _TEXT,
        "properties": _OBJECT, "traits": _OBJECT, "context": _OBJECT,
        "timestamp": _TIME, "originalTimestamp": _TIME, "sentAt": _TIME,
    }


def _variants(call: str, typed: bool) -> list[dict]:
    """One object schema per way the call may name who it is about (userId or
    anonymousId), its required members non-null."""
    variants = []
    for naming in ("userId", "anonymousId") if call != "alias" else ("userId",):
        required = {naming, *_REQUIRES.get(call, ())}
        properties = _message_properties(call if typed else None)
        for name in required:
            properties[name] = _ID if name.endswith("Id") else _VISIBLE
        variants.append({"type": "object", "properties": properties,
                         "required": sorted(required | ({"type"} if typed else set())),
                         "additionalProperties": _IGNORED})
    return variants


def openapi_request_schema(call: str) -> dict:
    """The request body of ``/api/ingest/v1/<call>`` as an OpenAPI 3.1 schema (a fresh
    copy: the document's hooks edit schemas in place)."""
    return copy.deepcopy(_request_schema(call))


def _request_schema(call: str) -> dict:
    if call != "batch":
        return {"anyOf": _variants(call, typed=False)}
    item = {"anyOf": [v for c in CALLS for v in _variants(c, typed=True)]}
    return {"type": "object", "properties": {
        "batch": {"type": "array", "minItems": 1, "maxItems": MAX_MESSAGES, "items": item},
        "sentAt": _TIME, "context": _OBJECT},
        "required": ["batch"], "additionalProperties": _IGNORED}
