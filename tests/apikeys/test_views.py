"""The /app/api-keys/ pages: who may do what, token shown once, never cached."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from enclave.apikeys.actions import do_roll_api_key
from enclave.apikeys.models import ApiKey, ApiKeyPolicy
from enclave.core import clock
from tests.apikeys.factories import make_key

TOKEN = re.compile(r"enc_test_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")
FORM = {"name": "CRM sync", "scopes": ["people:read", "events:write"],
        "role_ceiling": "user", "allowed_ips": "", "expires_days": "30"}


@pytest.mark.django_db
class TestList:
    @pytest.mark.parametrize("role", ["owner", "admin"])
    def test_key_managers_see_the_keys_page(self, world, role):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"],
                          name="Website")
        response = world.client(role).get("/app/api-keys/")
        assert response.status_code == 200
        assert key.public_id in response.text
        assert "Website" in response.text

    @pytest.mark.parametrize("role", ["user", "analyst", "viewer"])
    def test_members_without_api_keys_manage_get_403(self, world, role):
        assert world.client(role).get("/app/api-keys/").status_code == 403

    def test_another_accounts_keys_are_not_listed(self, world):
        _, mine = make_key(world.account, world.members["owner"], scopes=["people:read"])
        _, key = make_key(world.other, world.other_owner, scopes=["people:read"])
        response = world.client("owner").get("/app/api-keys/")
        assert response.status_code == 200
        assert mine.public_id in response.text
        assert key.public_id not in response.text

    def test_page_has_no_inline_script_or_style(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        response = world.client("owner").get("/app/api-keys/")
        assert (response.status_code, key.public_id in response.text) == (200, True)
        text = response.text
        assert "<script" not in text
        assert "style=" not in text
        assert "<style" not in text

    def test_keys_older_than_the_policy_are_flagged(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"],
                          expires_days=365)
        with clock.travel(dt.timedelta(days=91)):
            text = world.client("owner").get("/app/api-keys/").text
        assert "older than the account" in text
        assert "91 days old" in text
        assert key.public_id in text

    def test_exposed_keys_are_shown_to_the_owner(self, world, http_client):
        token, _key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        http_client.get("/api/v1/api-keys", HTTP_HOST="localhost",
                        HTTP_AUTHORIZATION=f"Bearer {token}")
        text = world.client("owner").get("/app/api-keys/").text
        assert "exposed (revoked)" in text
        assert "arrived over plain HTTP" in text


@pytest.mark.django_db
class TestCreate:
    def test_owner_creates_a_key_and_sees_the_token_once(self, world):
        client = world.client("owner")
        response = client.post("/app/api-keys/new/", FORM)
        assert response.status_code == 201
        token = TOKEN.search(response.text).group(0)
        key = ApiKey.objects.get(account=world.account)
        assert token.split("_")[2] == key.public_id
        assert key.scopes == ["events:write", "people:read"]
        assert key.role_ceiling == "user"
        listing = client.get("/app/api-keys/")
        assert (listing.status_code, key.public_id in listing.text) == (200, True)
        assert token not in listing.text

    def test_token_page_is_never_cached(self, world):
        response = world.client("owner").post("/app/api-keys/new/", FORM)
        assert response.status_code == 201
        assert "no-store" in response["Cache-Control"]

    @pytest.mark.parametrize("role", ["user", "analyst", "viewer"])
    def test_members_without_api_keys_manage_cannot_create(self, world, role):
        response = world.client(role).post("/app/api-keys/new/", FORM)
        assert response.status_code == 403
        assert not ApiKey.objects.exists()

    def test_creation_asks_for_reauthentication_after_the_window(self, world):
        client = world.client("owner")
        with clock.travel(dt.timedelta(minutes=11)):
            response = client.post("/app/api-keys/new/", FORM)
        assert (response.status_code, response["Location"]) == (
            302, "/app/reauth/?next=%2Fapp%2Fapi-keys%2Fnew%2F")
        assert not ApiKey.objects.exists()

    def test_ceiling_above_the_creators_role_shows_the_error(self, world):
        response = world.client("admin").post("/app/api-keys/new/",
                                              {**FORM, "role_ceiling": "owner"})
        assert response.status_code == 422
        assert "cannot exceed your own role" in response.text
        assert not ApiKey.objects.exists()

    def test_form_lists_every_scope(self, world):
        from enclave.access.scopes import SCOPES

        text = world.client("owner").get("/app/api-keys/new/").text
        assert all(f'value="{scope}"' in text for scope in SCOPES)


@pytest.mark.django_db
class TestRollRevokePolicy:
    def test_roll_shows_the_successor_token_and_keeps_the_old_key_in_grace(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        response = world.client("owner").post(f"/app/api-keys/{key.public_id}/roll/",
                                              {"grace_hours": "48"})
        assert response.status_code == 201
        assert "no-store" in response["Cache-Control"]
        successor = ApiKey.objects.get(predecessor=key)
        assert TOKEN.search(response.text).group(0).split("_")[2] == successor.public_id
        key.refresh_from_db()
        assert key.grace_until - key.rolled_at == dt.timedelta(hours=48)

    def test_roll_with_a_grace_over_seven_days_is_422(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        response = world.client("owner").post(f"/app/api-keys/{key.public_id}/roll/",
                                              {"grace_hours": "200"})
        assert response.status_code == 422
        assert ApiKey.objects.get(pk=key.pk).rolled_at is None

    def test_rolling_a_rolled_key_is_409(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        do_roll_api_key(key, actor=world.actor("owner"))
        response = world.client("owner").post(f"/app/api-keys/{key.public_id}/roll/")
        assert response.status_code == 409
        assert ApiKey.objects.filter(predecessor=key).count() == 1  # the first roll's only

    def test_revoke_from_the_page(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        response = world.client("admin").post(f"/app/api-keys/{key.public_id}/revoke/")
        assert (response.status_code, response["Location"]) == (302, "/app/api-keys/")
        assert ApiKey.objects.get(pk=key.pk).state() == "revoked"

    @pytest.mark.parametrize("action", ["roll", "revoke"])
    def test_another_accounts_key_is_404(self, world, action):
        _, key = make_key(world.other, world.other_owner, scopes=["people:read"])
        response = world.client("owner").post(f"/app/api-keys/{key.public_id}/{action}/")
        assert response.status_code == 404
        assert ApiKey.objects.get(pk=key.pk).state() == "active"

    def test_owner_changes_the_key_age_policy(self, world):
        response = world.client("owner").post("/app/api-keys/policy/", {"max_age_days": "30"})
        assert (response.status_code, response["Location"]) == (302, "/app/api-keys/")
        assert "<strong>30 days</strong>" in world.client("owner").get("/app/api-keys/").text

    def test_admin_cannot_change_the_policy(self, world):
        response = world.client("admin").post("/app/api-keys/policy/", {"max_age_days": "30"})
        assert response.status_code == 403
        assert not ApiKeyPolicy.objects.exists()

    def test_invalid_policy_is_422(self, world):
        response = world.client("owner").post("/app/api-keys/policy/", {"max_age_days": "0"})
        assert response.status_code == 422
        assert not ApiKeyPolicy.objects.exists()
