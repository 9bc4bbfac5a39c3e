"""OpenAPI additions: the bearer security scheme for API keys, and the problem+json
responses every operation may return (so clients and schemathesis know them).

Imported by ``ApiConfig.ready`` so drf-spectacular registers the extension.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from enclave.core import problems

PROBLEM_COMPONENT = "Problem"
# Statuses any authenticated operation can answer with, besides its own success codes.
ERROR_STATUSES = (400, 401, 403, 404, 406, 413, 415, 422, 429, 500)
PUBLIC_ERROR_STATUSES = (400, 404, 406, 429, 500)
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
}
_WRITES = {"post", "put", "patch"}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "enclave.apikeys.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "enc_<env>_<id>_<secret>",
                "description": "An Enclave API key: `Authorization: Bearer <key>`."}


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
            "trace_id": {"type": "string", "nullable": True},
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
