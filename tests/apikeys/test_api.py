"""GET /api/v1/api-keys and POST /api/v1/api-keys/{public_id}/revoke."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enclave.apikeys import tokens
from enclave.apikeys.models import ApiKey
from enclave.core.models import AuditEvent, AuditEventType
from tests.apikeys.factories import bearer, make_key


def key(world, role="owner", scopes=("api_keys:read", "api_keys:revoke"), **kw):
    return make_key(world.account, world.members[role], scopes=list(scopes), **kw)


@pytest.mark.django_db
class TestList:
    def test_lists_the_accounts_keys_without_secrets(self, world, client):
        token, mine = key(world)
        _, _other = make_key(world.other, world.other_owner, scopes=["people:read"])
        response = client.get("/api/v1/api-keys", **bearer(token))
        assert response.status_code == 200
        results = response.json()["results"]
        assert [r["public_id"] for r in results] == [mine.public_id]
        assert results[0]["state"] == "active"
        assert token not in response.text
        assert token.rsplit("_", 1)[1] not in response.text

    def test_key_with_a_ceiling_below_admin_cannot_be_given_the_scope(self, world):
        with pytest.raises(ValidationError, match="api_keys:read"):
            key(world, scopes=["api_keys:read"], role_ceiling="user")


@pytest.mark.django_db
class TestRevoke:
    def test_revokes_a_key_of_the_account(self, world, client):
        token, _ = key(world)
        _victim_token, victim = make_key(world.account, world.members["admin"],
                                        scopes=["people:read"])
        response = client.post(f"/api/v1/api-keys/{victim.public_id}/revoke",
                               **bearer(token))
        assert response.status_code == 200
        assert response.json()["state"] == "revoked"
        assert ApiKey.objects.get(pk=victim.pk).revoked_at is not None
        row = AuditEvent.objects.get(event_type=AuditEventType.API_KEY_REVOKED)
        assert row.extra_data["via_api_key"] == tokens.public_id_of(token)

    def test_read_scope_is_not_enough_to_revoke(self, world, client):
        token, _ = key(world, scopes=["api_keys:read"])
        _, victim = key(world)
        response = client.post(f"/api/v1/api-keys/{victim.public_id}/revoke", **bearer(token))
        assert response.status_code == 403
        assert response.json()["type"].endswith("/problems/insufficient-scope")
        assert ApiKey.objects.get(pk=victim.pk).revoked_at is None

    def test_another_accounts_key_is_404(self, world, client):
        token, _ = key(world)
        _, other = make_key(world.other, world.other_owner, scopes=["people:read"])
        response = client.post(f"/api/v1/api-keys/{other.public_id}/revoke", **bearer(token))
        assert response.status_code == 404
        assert ApiKey.objects.get(pk=other.pk).revoked_at is None

    def test_malformed_public_id_is_404(self, world, client):
        token, _ = key(world)
        response = client.post("/api/v1/api-keys/nope/revoke", **bearer(token))
        assert response.status_code == 404

    def test_a_key_may_revoke_itself_and_is_refused_afterwards(self, world, client):
        token, mine = key(world)
        assert client.post(f"/api/v1/api-keys/{mine.public_id}/revoke",
                           **bearer(token)).status_code == 200
        response = client.get("/api/v1/api-keys", **bearer(token))
        assert response.status_code == 401
        assert response.json()["type"].endswith("/problems/key-revoked")


@pytest.mark.django_db
def test_key_endpoints_are_in_the_openapi_schema(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert "get" in schema["paths"]["/api/v1/api-keys"]
    assert "post" in schema["paths"]["/api/v1/api-keys/{public_id}/revoke"]
