"""The rule tree in the OpenAPI document, exactly as ``audience.rules`` accepts it.

Nesting is spelt out level by level (``SegmentRule`` → ``SegmentRuleDepth1`` → … each
group holding at most its level's ``rules.GROUP_SIZES``), so the document has no
recursion and says the size limits. Fetched with an API key, field conditions name the
account's fields the key may use in full — each with the operators and values of its
type, a select field's options included; without one, field conditions are described
loosely (any ``custom.<key>``).
"""

from __future__ import annotations

from enclave.access import personal_data
from enclave.audience import rules
from enclave.people import visibility
from enclave.people.models import CONSENT_CHOICES
from enclave.people.values import CUSTOM_KEY_PATTERN, NO_NUL

NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
TEXT = {"type": "string", "maxLength": rules.TEXT_MAX, "pattern": NO_NUL}
NUMBER = {"type": "number", "minimum": -rules.NUMBER_LIMIT, "maximum": rules.NUMBER_LIMIT}
DATE = {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
DAYS = {"type": "integer", "minimum": 0, "maximum": rules.MAX_DAYS}
NULL = {"type": "null"}


def _in(items: dict) -> dict:
    return {"type": "array", "minItems": 1, "maxItems": rules.MAX_IN_VALUES, "items": items}


def _const(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties) -> dict:
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": properties}


def _ops_values(kind: str, options=None) -> list[tuple[tuple[str, ...], dict | None]]:
    """(operators, value schema or None for "no value") for a field type."""
    if kind == "text":
        return [(("equals", "not_equals", "contains", "not_contains", "starts_with"), TEXT),
                (("in",), _in(TEXT)), (("empty", "not_empty"), None)]
    if kind == "select":
        one = {"type": "string", "enum": list(options)}
        return [(("equals", "not_equals"), one), (("in",), _in(one)),
                (("empty", "not_empty"), None)]
    if kind == "number":
        return [(("equals", "not_equals", "gt", "gte", "lt", "lte"), NUMBER),
                (("empty", "not_empty"), None)]
    if kind == "boolean":
        return [(("is_true", "is_false", "empty", "not_empty"), None)]
    relative = [(("before", "after"), DATE),
                (("within_last_days", "more_than_days_ago"), DAYS)]
    if kind == "datetime":
        return relative
    return [*relative, (("anniversary_within_days",), {**DAYS, "maximum": 366}),
            (("empty", "not_empty"), None)]


def _field_variants(fields: list[str], kind: str, options=None) -> list[dict]:
    out = []
    for ops, value in _ops_values(kind, options):
        base = {"type": _const("field"), "field": _const(*fields), "op": _const(*ops)}
        if value is None:
            out.append(_object(["type", "field", "op"], **base, value=NULL))
        else:
            out.append(_object(["type", "field", "op", "value"], **base, value=value))
    return out


def field_conditions(definitions, perms) -> list[dict]:
    """One schema per (field type, operator group) over the fields ``perms`` may use."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in rules.BUILTIN_TYPES.items():
        if visibility.field_level(perms, name) == visibility.VISIBLE and name != "consent":
            by_kind.setdefault(kind, []).append(name)
    out: list[dict] = []
    if visibility.field_level(perms, "consent") == visibility.VISIBLE:
        out += _field_variants(["consent"], "select", CONSENT_CHOICES)
    for definition in definitions:
        name = f"custom.{definition.key}"
        if definition.encrypt_at_rest or visibility.field_level(
                perms, name, definitions) != visibility.VISIBLE:
            continue
        if definition.type == "select":
            out += _field_variants([name], "select", definition.options or ())
        else:
            by_kind.setdefault(definition.type, []).append(name)
    for kind, names in sorted(by_kind.items()):
        out += _field_variants(sorted(names), kind)
    return out


def _loose_field_condition() -> dict:
    every_op = sorted({op for ops in rules.OPS.values() for op in ops})
    return _object(
        ["type", "field", "op"], type=_const("field"),
        field={"type": "string", "anyOf": [
            {"enum": sorted(rules.BUILTIN_TYPES)},
            {"pattern": "^custom\\." + CUSTOM_KEY_PATTERN[1:]}]},
        op=_const(*every_op),
        value={"anyOf": [TEXT, {"type": "number"}, {"type": "boolean"}, _in(TEXT), NULL]})


def _event_condition(perms) -> dict:
    count = {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000}
    key = {"type": "string", "minLength": 1, "maxLength": 128,
           "pattern": '^(?!\\s*[+-]?\\d[\\d_]*\\s*$)[^\\u0000"]*$'}
    where = [
        _object(["property", "op"], property=key, op=_const("exists"), value=NULL),
        _object(["property", "op", "value"], property=key, op=_const("equals", "not_equals"),
                value={"anyOf": [TEXT, NUMBER, {"type": "boolean"}]}),
        _object(["property", "op", "value"], property=key, op=_const("contains"), value=TEXT),
        _object(["property", "op", "value"], property=key,
                op=_const("gt", "gte", "lt", "lte"), value=NUMBER),
    ]
    if perms is not None and visibility.level(perms, personal_data.PERSONAL) != \
            visibility.VISIBLE:
        where = []  # event properties are personal data: only those who see it in full
    return _object(
        ["type", "name"], type=_const("event"),
        name={"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK},
        min=count, max=count,
        within_days={"type": ["integer", "null"], "minimum": 1, "maximum": rules.MAX_DAYS},
        since={"anyOf": [DATE, NULL]}, where={"anyOf": [*where, NULL]})


def _depth_name(level: int) -> str:
    return "SegmentRule" if level == 0 else f"SegmentRuleDepth{level}"


def openapi_components(definitions=None, perms=None) -> dict:
    """Components ``SegmentCondition`` and ``SegmentRule`` (+ one per nesting level):
    for an account's ``definitions`` and a key's ``perms`` when given (exact), else
    generic."""
    fields = [_loose_field_condition()] if definitions is None else \
        field_conditions(definitions, perms)
    condition = {"anyOf": [
        *fields,
        _object(["type", "tag"], type=_const("tag"),
                tag={"type": "string", "minLength": 1, "maxLength": 50, "pattern": NO_NUL},
                has={"type": "boolean"}),
        _event_condition(perms),
        *([] if perms is not None and visibility.level(perms, personal_data.NONE) !=
          visibility.VISIBLE else [_object(
              ["type", "topic"], type=_const("subscription"),
              topic={"type": "string", "minLength": 1, "maxLength": 40, "pattern": NO_NUL},
              status=_const("subscribed", "unsubscribed", "pending", "never"))]),
        _object(["type", "segment"], type=_const("segment"),
                segment={"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                member={"type": "boolean"}),
    ], "description": "One condition: field, tag, event, subscription or segment "
                      "membership."}
    negation = _object(["type", "rule"], type=_const("not"), rule=_ref("SegmentCondition"))
    components = {"SegmentCondition": condition, "SegmentNot": negation}
    for level in range(rules.MAX_DEPTH, -1, -1):
        options = [_ref("SegmentCondition"), _ref("SegmentNot")]
        if level < rules.MAX_DEPTH:
            options.append(_object(
                ["type", "match", "rules"], type=_const("group"), match=_const("all", "any"),
                rules={"type": "array", "minItems": 1, "maxItems": rules.GROUP_SIZES[level],
                       "items": _ref(_depth_name(level + 1))}))
        components[_depth_name(level)] = {"anyOf": options}
    components["SegmentRule"]["description"] = (
        "A segment's rule tree: a condition, a not (of one condition) or a group (all/any "
        "of its rules). "
        f"Groups nest {rules.MAX_DEPTH} deep at most, holding "
        f"{' / '.join(map(str, rules.GROUP_SIZES))} rules by depth.")
    return components
