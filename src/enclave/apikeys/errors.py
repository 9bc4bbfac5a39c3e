"""API-key failures: one exception per failure mode, each with its own problem type.

Each class carries ``problem_slug`` (also DRF's ``default_code``) naming a problem type
registered in :data:`enclave.core.problems.PROBLEMS`, so ``/problems/<slug>`` documents
it and the API exception handler answers with that ``type``. The 401s subclass DRF's
``AuthenticationFailed`` (DRF then adds ``WWW-Authenticate``); ``ip-not-allowed`` too,
with status 403, because it is decided while authenticating; ``insufficient-scope`` is a
``PermissionDenied`` (403).
"""

from __future__ import annotations

from rest_framework import exceptions

from enclave.core import problems
from enclave.core.problems import ProblemType

API_KEY_PROBLEMS = (
    ProblemType("key-missing", 401, "API key required",
                "Send the API key as `Authorization: Bearer <key>`."),
    ProblemType("key-malformed", 401, "Malformed API key",
                "The credential is not an Enclave API key (enc_<env>_<public id>_<secret>)."),
    ProblemType("key-bad-checksum", 401, "API key checksum mismatch",
                "The key's checksum does not match: it was mistyped or truncated."),
    ProblemType("wrong-environment", 401, "API key from another environment",
                "The key was issued by another Enclave environment (for example a test "
                "key sent to production). Use a key issued by this deployment."),
    ProblemType("key-unknown", 401, "Unknown API key",
                "No API key matches. It may have been deleted, or the secret is wrong."),
    ProblemType("key-expired", 401, "API key expired",
                "The key is past its expiry date. Create or roll a key."),
    ProblemType("key-revoked", 401, "API key revoked", "The key was revoked."),
    ProblemType("key-exposed", 401, "API key exposed",
                "The key was sent over plain HTTP, so it is treated as leaked and was "
                "revoked. Create a new key and send it over HTTPS only."),
    ProblemType("key-rolled", 401, "API key rolled",
                "The key was replaced by a successor and its grace period has ended. "
                "Use the successor key."),
    ProblemType("key-creator-removed", 401, "API key creator has left the account",
                "The member who created the key is no longer in the account, so the key "
                "no longer works."),
    ProblemType("ip-not-allowed", 403, "IP address not allowed",
                "The key has an IP allowlist and the request came from outside it."),
    ProblemType("insufficient-scope", 403, "Insufficient scope",
                "The key does not have the scope this endpoint needs; see `required_scope`."),
)


def register_problem_types() -> None:
    """Add the API-key problem types to the registry (idempotent; AppConfig.ready)."""
    for problem in API_KEY_PROBLEMS:
        problems.PROBLEMS.setdefault(problem.slug, problem)


register_problem_types()


class ApiKeyError(exceptions.AuthenticationFailed):
    """Base of every API-key authentication failure."""

    problem_slug = "key-unknown"
    default_code = "key-unknown"
    status_code = 401

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or problems.PROBLEMS[self.problem_slug].description,
                         code=self.problem_slug)


def _kind(slug: str, doc: str, status: int = 401) -> type[ApiKeyError]:
    name = "".join(part.title() for part in slug.split("-"))
    return type(name, (ApiKeyError,), {"problem_slug": slug, "default_code": slug,
                                        "status_code": status, "__doc__": doc,
                                        "__module__": __name__})


KeyMissing = _kind("key-missing", "No credential was sent.")
KeyMalformed = _kind("key-malformed", "The credential is not in the key format.")
KeyBadChecksum = _kind("key-bad-checksum", "The key's checksum does not match.")
WrongEnvironment = _kind("wrong-environment", "The key belongs to another environment.")
KeyUnknown = _kind("key-unknown", "No key with that public id and secret.")
KeyExpired = _kind("key-expired", "The key is past its expiry.")
KeyRevoked = _kind("key-revoked", "The key was revoked.")
KeyExposed = _kind("key-exposed", "The key was exposed over plain HTTP (and revoked).")
KeyRolled = _kind("key-rolled", "The key was rolled and its grace period is over.")
KeyCreatorRemoved = _kind("key-creator-removed", "The key's creator left the account.")
IpNotAllowed = _kind("ip-not-allowed", "The client IP is outside the key's allowlist.", 403)


class InsufficientScope(exceptions.PermissionDenied):
    """The key lacks the scope the endpoint needs (403 ``insufficient-scope``)."""

    problem_slug = "insufficient-scope"
    default_code = "insufficient-scope"

    def __init__(self, required: str | None = None, detail: str | None = None) -> None:
        self.required_scope = required
        super().__init__(detail or (f"This endpoint needs the {required} scope."
                                    if required else "This key may not use this endpoint."),
                         code=self.problem_slug)


def problem_extra(exc: Exception) -> dict:
    """Extra problem members for ``exc`` (``required_scope`` for insufficient scope)."""
    required = getattr(exc, "required_scope", None)
    return {"required_scope": required} if required else {}
