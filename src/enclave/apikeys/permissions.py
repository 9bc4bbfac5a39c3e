"""DRF permission: the key must carry the scope the view declares for the method.

    class PeopleView(APIView):
        permission_classes = [HasScope]
        required_scopes = {"GET": "people:read", "POST": "people:write"}

A value may be one scope or a tuple of scopes (all needed). A method the view does not
list is refused (fail closed); HEAD uses GET's scope. No key at all -> 401 key-missing;
a key without the scope -> 403 insufficient-scope.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from enclave.apikeys import errors
from enclave.apikeys.auth import ApiPrincipal


def required_scopes_for(view, method: str) -> tuple[str, ...] | None:
    table = getattr(view, "required_scopes", None) or {}
    needed = table.get(method)
    if needed is None and method == "HEAD":
        needed = table.get("GET")
    if needed is None:
        return None
    return (needed,) if isinstance(needed, str) else tuple(needed)


class HasScope(BasePermission):
    """Allow only requests whose API key has the view's ``required_scopes[method]``."""

    def has_permission(self, request, view) -> bool:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            raise errors.KeyMissing()
        if request.method == "OPTIONS":
            return True
        needed = required_scopes_for(view, request.method)
        if needed is None:
            raise errors.InsufficientScope(
                detail=f"No scope allows {request.method} on this endpoint.")
        missing = [s for s in needed if s not in principal.scopes]
        if missing:
            raise errors.InsufficientScope(missing[0])
        return True
