"""The base class of every authenticated API view.

What a request needs comes from the endpoint registry (``enclave.api.endpoints``): the
API-key scope (checked by ``apikeys.permissions.HasScope``, 403 ``insufficient-scope``)
and the permission the key's principal must hold (403 ``forbidden``). Views then work
with ``self.ctx`` — a ``people.access.MemberContext`` whose permissions are the key's —
so the access functions and the visibility formatter apply unchanged.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from enclave.api import endpoints
from enclave.api.errors import InvalidQuery
from enclave.api.parsers import StrictJSONParser, unstorable
from enclave.apikeys.auth import ApiKeyAuthentication, api_context
from enclave.apikeys.permissions import HasScope
from enclave.apikeys.throttle import ApiIpThrottle, ApiKeyThrottle
from enclave.people.access import MemberContext


def endpoint_of(request, view) -> endpoints.Endpoint:
    match = getattr(request, "resolver_match", None)
    found = endpoints.lookup(match.url_name if match else None, request.method)
    if found is None:  # tests/api/test_registry.py makes this unreachable
        raise ImproperlyConfigured(f"{type(view).__name__} {request.method} has no entry "
                                   "in enclave.api.endpoints")
    return found


_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})


@functools.lru_cache(maxsize=256)
def _scopes_of(name: str) -> Mapping[str, str]:
    out = {e.method: e.scope for e in endpoints.ENDPOINTS if e.name == name and e.scope}
    if "GET" in out:
        out["HEAD"] = out["GET"]
    return types.MappingProxyType(out)


class RegistryPermission(BasePermission):
    """The key's principal holds the endpoint's permission (after its scope passed)."""

    def has_permission(self, request, view) -> bool:
        codename = endpoint_of(request, view).permission
        if codename is not None and codename not in request.auth.perms:
            raise exceptions.PermissionDenied(
                f"This key's permissions do not include {codename} (its creator's role, "
                "its role ceiling and its scopes all bound them).")
        return True


class ApiView(APIView):
    """Authenticated by API key; scope and permission from the registry; JSON only."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope, RegistryPermission]
    throttle_classes = [ApiKeyThrottle, ApiIpThrottle]
    parser_classes = [StrictJSONParser]
    metadata_class = None  # OPTIONS answers 405 like any other undocumented method
    # Query parameters each method accepts; anything else is a 400 invalid-query.
    query_params: dict[str, frozenset[str]] = {}

    @property
    def required_scopes(self) -> Mapping[str, str]:
        """``{method: scope}`` for this route, derived from the registry."""
        match = getattr(self.request, "resolver_match", None)
        return _scopes_of(match.url_name if match else "")

    def perform_content_negotiation(self, request, force=False):
        # JSON is the only renderer: a request that accepts it (no Accept, */*, or
        # exactly application/json — what clients send) needs no negotiation. Anything
        # else goes through DRF's, which answers 406 for what it cannot serve.
        accept = request.META.get("HTTP_ACCEPT", "")
        renderers = self.get_renderers()
        if accept in _PLAIN_ACCEPT and len(renderers) == 1 and \
                renderers[0].media_type == "application/json":
            return renderers[0], renderers[0].media_type
        return super().perform_content_negotiation(request, force)

    def initial(self, request, *args, **kwargs):
        # An unsupported method is a 405 whoever asks: it reveals nothing.
        if request.method.lower() not in self.http_method_names or not hasattr(
                self, request.method.lower()) or request.method == "OPTIONS":
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)  # key, scope, permission, rate limits
        self._check_query(request)

    def check_permissions(self, request):
        # Rate limits come before the scope and permission checks: a refused request still
        # costs a key lookup, so it counts against the key's and the address's limits.
        super().check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request):
        """Already done in :meth:`check_permissions`, before permission checks."""

    def allowed_query(self, request) -> frozenset[str]:
        """Query parameters this request may carry (default: ``query_params``)."""
        return self.query_params.get("GET" if request.method == "HEAD" else request.method,
                                     frozenset())

    def _check_query(self, request) -> None:
        unknown = sorted(set(request.query_params) - self.allowed_query(request))
        if unknown:
            raise InvalidQuery(f"Unknown query parameter(s): {', '.join(unknown)}.")
        for key in request.query_params:
            values = request.query_params.getlist(key)
            if len(values) > 1:
                raise InvalidQuery(f"Send {key} at most once.")
            if unstorable(values[0]):
                raise InvalidQuery(f"{key}: {unstorable(values[0])}")

    @property
    def ctx(self) -> MemberContext:
        """The key's principal as a member context (permissions = the key's)."""
        if not hasattr(self, "_ctx"):
            self._ctx = api_context(self.request)
        return self._ctx

    def body(self) -> dict:
        """The parsed JSON body; a non-object body is a 422."""
        data = self.request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"body": ["Send a JSON object."]})
        return data
