"""The base class of every authenticated API view.

What a request needs comes from the one endpoint registry (``enclave.access.endpoints``):
the API-key scope (:class:`HasScope`, 403 ``insufficient-scope``) and the permission the
key's principal must hold (403 ``forbidden``). Views then work with ``self.principal``
— the key's ``access.Principal`` (creator's current role ∩ ceiling ∩ scopes) — which
they pass to the access functions and, as ``actor``, to the actions, so the key's
narrowed rights reach the action itself.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from enclave.access import endpoints
from enclave.access.principal import Principal
from enclave.api.errors import InvalidQuery
from enclave.api.parsers import StrictJSONParser, unstorable
from enclave.apikeys import errors as key_errors
from enclave.apikeys.auth import ApiKeyAuthentication
from enclave.apikeys.throttle import ApiIpThrottle, ApiKeyThrottle


def endpoint_of(request, view) -> endpoints.Endpoint:
    match = getattr(request, "resolver_match", None)
    found = endpoints.lookup(match.url_name if match else None, request.method)
    if found is None:  # tests/api/test_authorization.py (TestRegistry) makes this unreachable
        raise ImproperlyConfigured(f"{type(view).__name__} {request.method} has no entry "
                                   "in enclave.access.endpoints")
    return found


_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})


class HasScope(BasePermission):
    """The request's API key carries the endpoint's scope. No key at all: 401
    ``key-missing``; a key without the scope: 403 ``insufficient-scope``."""

    def has_permission(self, request, view) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal) or not principal.is_api_key:
            raise key_errors.KeyMissing()
        endpoint = endpoint_of(request, view)
        if principal.browser is not None and not endpoint.browser:
            raise key_errors.InsufficientScope(detail=(
                "A browser key sends page, track and identify calls to /api/ingest/v1 "
                "only; use a server key here."))
        if endpoint.scope is not None and not principal.has_scope(endpoint.scope):
            raise key_errors.InsufficientScope(endpoint.scope)
        return True


class RegistryPermission(BasePermission):
    """The key's principal holds the endpoint's permission (after its scope passed)."""

    def has_permission(self, request, view) -> bool:
        permission = endpoint_of(request, view).permission
        if permission is not None and not request.auth.can(permission):
            raise exceptions.PermissionDenied(
                f"This key's permissions do not include {permission.value} (its creator's "
                "role, its role ceiling and its scopes all bound them).")
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
    def principal(self) -> Principal:
        """The calling key's principal (set by authentication; HasScope made sure)."""
        return self.request.auth

    def body(self) -> dict:
        """The parsed JSON body; a non-object body is a 422."""
        data = self.request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"body": ["Send a JSON object."]})
        return data

    def validated(self, serializer_class) -> dict:
        """The body checked by ``serializer_class`` (422 listing every bad field)."""
        serializer = serializer_class(data=self.body())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
