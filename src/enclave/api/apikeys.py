"""API endpoints for API keys: list (``api_keys:read``) and revoke (``api_keys:revoke``).

Those scopes map to ``API_KEYS_READ`` / ``API_KEYS_MANAGE``, so both work only while the
key's creator still holds them and its ceiling includes them (``access.scopes``).
Responses never carry a token or its hash.
Keys are created and rolled only in the web app (re-authentication) or by operators
with ``enclave apikeys``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from enclave.api.base import ApiView
from enclave.apikeys import access, actions


class ApiKeySerializer(serializers.Serializer):
    public_id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["server", "browser"])
    allowed_origins = serializers.ListField(child=serializers.CharField(),
                                            help_text="browser keys: where they work")
    require_consent = serializers.BooleanField()
    identify_mode = serializers.ChoiceField(choices=["link", "fill_new"])
    scopes = serializers.ListField(child=serializers.CharField())
    role_ceiling = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "grace", "rolled", "expired",
                                             "revoked", "exposed"])
    created_by = serializers.IntegerField(allow_null=True, help_text="member id")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    exposed_at = serializers.DateTimeField(allow_null=True)
    grace_until = serializers.DateTimeField(allow_null=True)
    allowed_ips = serializers.ListField(child=serializers.CharField())
    predecessor = serializers.CharField(allow_null=True)


class ApiKeyListSerializer(serializers.Serializer):
    results = ApiKeySerializer(many=True)


def _iso(value):
    return value.isoformat() if value else None


def key_json(key) -> dict:
    return {"public_id": key.public_id, "name": key.name, "kind": key.kind,
            "allowed_origins": list(key.allowed_origins),
            "require_consent": key.require_consent, "identify_mode": key.identify_mode,
            "scopes": list(key.scopes),
            "role_ceiling": key.role_ceiling, "state": key.state(),
            "created_by": key.created_by_id, "created_at": _iso(key.created_at),
            "expires_at": _iso(key.expires_at), "last_used_at": _iso(key.last_used_at),
            "revoked_at": _iso(key.revoked_at), "exposed_at": _iso(key.exposed_at),
            "grace_until": _iso(key.grace_until), "allowed_ips": list(key.allowed_ips),
            "predecessor": key.predecessor.public_id if key.predecessor_id else None}


class ApiKeysView(ApiView):
    @extend_schema(operation_id="api_keys_list", responses=ApiKeyListSerializer,
                   summary="The account's API keys (never their secrets)")
    def get(self, request):
        return Response({"results": [key_json(k) for k in access.keys_of(request.auth)]})


class ApiKeyRevokeView(ApiView):
    @extend_schema(operation_id="api_keys_revoke", request=None,
                   responses=ApiKeySerializer,
                   parameters=[OpenApiParameter("public_id", str, OpenApiParameter.PATH,
                                                pattern="^[0-9A-Za-z]{12}$")],
                   summary="Revoke an API key now (takes effect on the next request)")
    def post(self, request, public_id: str):
        key = access.access_key(request.auth, public_id)
        actions.do_revoke_api_key(key, actor=request.auth, request=request._request)
        key.refresh_from_db()
        return Response(key_json(key))
