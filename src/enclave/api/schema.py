"""OpenAPI additions: the bearer security scheme for API keys, and the problem+json
responses every operation may return (so clients and schemathesis know them).

Imported by ``ApiConfig.ready`` so drf-spectacular registers the extension.
"""

from __future__ import annotations

import copy

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from enclave.api import serializers as s
from enclave.audience import schema as audience_schema
from enclave.core import problems
from enclave.events import schema as events_schema
from enclave.people import values
from enclave.people.actions import EMAIL_PATTERN

PROBLEM_COMPONENT = "Problem"
# Statuses any authenticated operation can answer with, besides its own success codes.
ERROR_STATUSES = (400, 401, 403, 404, 406, 413, 415, 422, 429, 500, 503)
PUBLIC_ERROR_STATUSES = (400, 404, 406, 429, 500, 503)
_DESCRIPTIONS = {
    400: "Malformed body or invalid query parameters (invalid-body, invalid-query).",
    401: "Missing, malformed, unknown, expired, revoked or rolled API key.",
    403: "The key lacks the scope (insufficient-scope) or permission (forbidden), or "
         "the client IP is outside its allowlist.",
    404: "No such resource (or it belongs to another account).",
    406: "The client does not accept JSON.",
    409: "Uniqueness conflict (email, external id or field key already used).",
    413: "The body is larger than the configured limit.",
    415: "The body is not application/json.",
    422: "Validation failed (errors per field), or a query on a field the key cannot see.",
    429: "Rate limited; retry after Retry-After seconds.",
    500: "Server error; quote the trace_id.",
    503: "The database cannot take the request right now (unavailable: a failover), or "
         "concurrent writes got in the way (busy: ingest); nothing was changed. Retry "
         "after Retry-After seconds.",
}
_WRITES = {"post", "put", "patch"}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "enclave.apikeys.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "enc_<env>_<id>_<secret>",
                "description": "An Enclave API key: `Authorization: Bearer <key>`."}


class WriteKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    # The tracking calls' authentication (drf-spectacular matches the exact class).
    target_class = "enclave.api.tracking.SpecKeyAuthentication"
    name = "writeKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic",
                "description": "The tracking spec's SDKs: an Enclave API key as the Basic "
                               "user name, no password (`Authorization: Bearer <key>` works "
                               "too). A website's browser key goes in the body's "
                               "`writeKey` instead."}


def _problem_schema() -> dict:
    return {
        "type": "object",
        "description": "RFC 9457 problem details. `type` is a URL documenting the problem.",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "trace_id": {"type": ["string", "null"]},
            "errors": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "string"}}},
            "required_scope": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail"],
        "x-problem-types": sorted(problems.PROBLEMS),
    }


def add_problem_responses(result, generator, request, public):
    """Postprocessing hook: the Problem component and the error responses of every
    operation (authenticated ones: all of ERROR_STATUSES; writes also 409)."""
    result.setdefault("components", {}).setdefault("schemas", {})[PROBLEM_COMPONENT] = \
        _problem_schema()
    ref = {"$ref": f"#/components/schemas/{PROBLEM_COMPONENT}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            authenticated = bool(operation.get("security")) and operation["security"] != [{}]
            statuses = list(ERROR_STATUSES if authenticated else PUBLIC_ERROR_STATUSES)
            if method in _WRITES or method == "delete":
                statuses.append(409)
            for code in sorted(statuses):
                operation["responses"].setdefault(str(code), {
                    "description": _DESCRIPTIONS[code],
                    "content": {problems.CONTENT_TYPE: {"schema": ref}},
                })
    return result


# --- the document describes exactly what the server accepts ---------------------------
# (tests/api/test_schema.py TestPrecision; tests/api/test_contract.py runs schemathesis
# with every check against a live server.)

_STRING_FORMATS_WITHOUT_NUL = frozenset({"date", "date-time", "email", "uri"})
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 200}
_CURSOR = {"type": "string", "pattern": r"^([0-9]{1,18})?$"}
_DAY = {"type": "string", "anyOf": [
    {"format": "date", "pattern": r"^(?!9999)[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    {"maxLength": 0}]}


def _is_string(node: dict) -> bool:
    kind = node.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _no_nul(node):
    """Every string an operation accepts excludes NUL (the parser's 400); every free-form
    map's keys too. Walks a request schema in place."""
    if isinstance(node, list):
        for item in node:
            _no_nul(item)
        return
    if not isinstance(node, dict):
        return
    if _is_string(node) and "enum" not in node and \
            node.get("format") not in _STRING_FORMATS_WITHOUT_NUL:
        pattern = node.get("pattern")
        if pattern is None:
            node["pattern"] = values.NO_NUL
        elif pattern == r"\S":
            node["pattern"] = s.NOT_BLANK
        elif pattern != EMAIL_PATTERN and not pattern.startswith(
                ("^[a-z", "^[0-9", "^[^\\u0000]", "^(", "^\\s", "^(?!")):
            raise ValueError(f"pattern {pattern!r} may allow NUL; make it exclude NUL")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) or (node.get("type") == "object" and "properties" not in node
                                   and extra is not False):
        node.setdefault("propertyNames", {"type": "string", "pattern": values.NO_NUL})
    for key in ("properties", "patternProperties"):
        for value in node.get(key, {}).values():
            _no_nul(value)
    if "propertyNames" in node:
        node["propertyNames"].setdefault("type", "string")
    for key in ("items", "additionalProperties", "propertyNames", "anyOf", "oneOf",
                "allOf", "not", "prefixItems"):
        if key in node:
            _no_nul(node[key])


def _api_key_permissions() -> frozenset:
    """The most any API key can hold: the union of every scope's permissions."""
    from enclave.access.scopes import SCOPES, scope_permissions

    return scope_permissions(SCOPES)


def _person_write(component: dict) -> None:
    """Only the fields some key may set (no scope grants ``people.unmask``, so sensitive
    fields are masked for every key and writing them is a 422), each with its rule."""
    from enclave.people import visibility

    perms = _api_key_permissions()
    properties = component["properties"]
    for name in list(properties):
        if name in visibility.FIELD_CLASSES and visibility.level(
                perms, visibility.FIELD_CLASSES[name]) != visibility.VISIBLE:
            del properties[name]
    for name, rule in values.PERSON_FIELD_RULES.items():
        if name in properties:
            properties[name].update(rule)


def _upsert(component: dict) -> dict:
    """An upsert names who to match: one whole object schema per way (a non-blank
    external_id; else an email), like the events' identify."""
    variants = []
    for name, rule in (("external_id", r"\S"), ("email", EMAIL_PATTERN)):
        variant = copy.deepcopy(component)
        variant.pop("description", None)
        variant["required"] = [*variant.get("required", []), name]
        variant["properties"][name] = {"allOf": [variant["properties"][name],
                                                 {"pattern": rule}]}
        variants.append(variant)
    return {"description": component.get("description", ""), "anyOf": variants}


def person_write_bodies(schemas: dict):
    """The object schemas of person write bodies (an upsert's are its variants)."""
    for name, component in schemas.items():
        if name.endswith(("PersonWriteRequest", "PersonUpsertRequest")):
            yield from component.get("anyOf", [component])


def segment_bodies(schemas: dict) -> None:
    """Segment bodies carry the rule tree (``audience.schema``); a create names its kind:
    a dynamic segment needs rules, a static list has none."""
    rule = {"$ref": "#/components/schemas/SegmentRule"}
    for name, component in schemas.items():  # PATCH bodies are "Patched…" components
        if name.endswith(("SegmentChangeRequest", "SegmentPreviewBodyRequest")):
            component["properties"]["rules"] = dict(rule)
    create = schemas.get("SegmentCreateRequest")
    if create is None or "anyOf" in create:
        return
    variants = []
    for kind, rules_schema, required in (("dynamic", dict(rule), ["rules"]),
                                         ("static", {"type": "null"}, [])):
        variant = copy.deepcopy(create)
        variant.pop("description", None)
        variant["properties"]["kind"] = {"type": "string", "enum": [kind]}
        variant["properties"]["rules"] = rules_schema
        variant["required"] = sorted({*variant.get("required", []), *required})
        variants.append(variant)
    schemas["SegmentCreateRequest"] = {"description": create.get("description", ""),
                                       "anyOf": variants}


def _field_definition(component: dict) -> None:
    """A select field needs at least one option (do_define_field)."""
    from enclave.people.models import FIELD_TYPES

    others = [t for t in FIELD_TYPES if t != "select"]
    component["anyOf"] = [{"properties": {"type": {"enum": others}}},
                          {"required": ["options"], "properties": {"options": {"minItems": 1}}}]


def _operations(result):
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def _parameters(operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        name, schema = parameter["name"], parameter.get("schema", {})
        if parameter["in"] == "query" and name == "limit":
            parameter["schema"] = dict(_LIMIT)
        elif parameter["in"] == "query" and name == "cursor":
            parameter["schema"] = dict(_CURSOR)
        elif parameter["in"] == "query" and name in ("since", "until"):
            parameter["schema"] = {**_DAY, "anyOf": [dict(o) for o in _DAY["anyOf"]]}
        elif parameter["in"] == "path" and schema.get("type") == "string" and \
                "pattern" not in schema:
            # Django's str converter: one path segment (no "/"), at least one character.
            schema.update(minLength=1, pattern=r"^[^/\u0000]+$")
        else:
            _no_nul(schema)


def _links(result) -> None:
    """OpenAPI links, so clients (and schemathesis's stateful phase) know that a created
    person's id feeds the person operations, an added tag the remove-tag one and a created
    segment's id the segment operations."""
    person = {"person_id": "$response.body#/id"}
    to_person = {op: {"operationId": op, "parameters": person}
                 for op in ("people_get", "people_update", "people_archive",
                            "people_tags_list", "people_tags_add", "people_erase")}
    by_id = {op.get("operationId"): op for _, _, op in _operations(result)}
    for op_id, statuses in (("people_create", ("201",)), ("people_upsert", ("200", "201")),
                            ("people_update", ("200",))):
        for status in statuses:
            by_id[op_id]["responses"][status]["links"] = {
                k: dict(v) for k, v in to_person.items() if k != op_id}
    segment = {"segment_id": "$response.body#/id"}
    by_id["segments_create"]["responses"]["201"]["links"] = {
        op: {"operationId": op, "parameters": dict(segment)}
        for op in ("segments_get", "segments_update", "segments_count", "segments_members",
                   "segments_members_add", "segments_delete")}
    by_id["people_tags_add"]["responses"]["200"]["links"] = {"people_tags_remove": {
        "operationId": "people_tags_remove",
        "parameters": {"person_id": "$request.path.person_id",
                       "tag": "$response.body#/tags/0"}}}


def make_precise(result, generator, request, public):
    """Postprocessing hook: request bodies refuse unknown properties (StrictSerializer)
    and booleans are booleans; no string takes NUL; query and path parameters carry the
    server's bounds; bodies that must be sent are required; links for the stateful
    chains."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(events_schema.openapi_components())
    schemas.update(audience_schema.openapi_components())
    for name, component in schemas.items():
        if name.endswith("Request"):  # COMPONENT_SPLIT_REQUEST: the request serializers
            component["additionalProperties"] = False
            if name.endswith(("PersonWriteRequest", "PersonUpsertRequest")):
                _person_write(component)
            if name == "FieldDefinitionWriteRequest":
                _field_definition(component)
            _no_nul(component)
    if "PersonUpsertRequest" in schemas:
        schemas["PersonUpsertRequest"] = _upsert(schemas["PersonUpsertRequest"])
    segment_bodies(schemas)
    for _, _, operation in _operations(result):
        _parameters(operation)
        body = operation.get("requestBody")
        if body:
            for media in body.get("content", {}).values():
                if "$ref" not in media.get("schema", {}):
                    _no_nul(media["schema"])
        operation_id = operation.get("operationId") or ""
        if operation_id in ("events_ingest", "people_upsert") or \
                operation_id.startswith("ingest_"):
            body["required"] = True

    _links(result)
    return result
