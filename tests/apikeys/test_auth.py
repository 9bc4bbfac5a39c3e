"""Authenticating API requests by key: every failure mode has its own problem+json."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.accounts.actions import do_change_role, do_remove_member
from enclave.apikeys import errors, tokens
from enclave.apikeys.actions import do_revoke_api_key, do_roll_api_key
from enclave.apikeys.auth import authenticate_token
from enclave.apikeys.models import ApiKey
from enclave.core import clock
from enclave.core.models import CredentialExposure
from enclave.people import visibility
from tests.apikeys.factories import altered, bearer, make_key

URL = "/api/v1/api-keys"


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith(f"/problems/{slug}"), body
    assert body["trace_id"]
    return body


def owner_key(world, scopes=("api_keys:read",), **kw):
    return make_key(world.account, world.members["owner"], scopes=list(scopes), **kw)


@pytest.mark.django_db
class TestFailures:
    def test_request_without_key_is_401_key_missing(self, world, client):
        response = client.get(URL)
        problem(response, 401, "key-missing")
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_non_bearer_scheme_is_401_key_malformed(self, world, client):
        problem(client.get(URL, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz"), 401, "key-malformed")

    def test_garbage_key_is_401_key_malformed(self, world, client):
        problem(client.get(URL, **bearer("not-a-key")), 401, "key-malformed")

    def test_mistyped_key_is_401_bad_checksum(self, world, client):
        token, _ = owner_key(world)
        problem(client.get(URL, **bearer(altered(token, -10))), 401, "key-bad-checksum")

    def test_bad_checksum_is_refused_without_a_database_query(
            self, world, django_assert_num_queries):
        token, _ = owner_key(world)
        with django_assert_num_queries(0), pytest.raises(errors.KeyBadChecksum):
            authenticate_token(altered(token), "10.0.0.1")

    def test_well_formed_unknown_key_is_401_key_unknown(self, world, client):
        token = tokens.make_token("test", tokens.new_public_id())
        problem(client.get(URL, **bearer(token)), 401, "key-unknown")

    def test_known_public_id_with_wrong_secret_is_401_key_unknown(self, world, client):
        _, key = owner_key(world)
        forged = tokens.make_token("test", key.public_id)
        problem(client.get(URL, **bearer(forged)), 401, "key-unknown")

    def test_key_of_another_environment_is_401_wrong_environment(self, world, client):
        _, key = owner_key(world)
        production = tokens.make_token("production", key.public_id)
        assert production.startswith("enc_live_")
        body = problem(client.get(URL, **bearer(production)), 401, "wrong-environment")
        assert "production" in body["detail"]

    def test_expired_key_is_401_key_expired(self, world, client):
        token, _ = owner_key(world, expires_days=1)
        with clock.travel(dt.timedelta(days=1, seconds=1)):
            problem(client.get(URL, **bearer(token)), 401, "key-expired")

    def test_revoked_key_is_401_key_revoked(self, world, client):
        token, key = owner_key(world)
        do_revoke_api_key(key, actor=world.actor("owner"))
        problem(client.get(URL, **bearer(token)), 401, "key-revoked")

    def test_key_from_outside_its_allowlist_is_403_ip_not_allowed(self, world, client):
        token, _ = owner_key(world, allowed_ips="192.0.2.0/24")
        body = problem(client.get(URL, REMOTE_ADDR="198.51.100.7", **bearer(token)), 403,
                       "ip-not-allowed")
        assert "198.51.100.7" in body["detail"]

    def test_key_from_inside_its_allowlist_is_accepted(self, world, client):
        token, _ = owner_key(world, allowed_ips="192.0.2.0/24, 2001:db8::/32")
        assert client.get(URL, REMOTE_ADDR="192.0.2.44", **bearer(token)).status_code == 200
        assert client.get(URL, REMOTE_ADDR="2001:db8::5", **bearer(token)).status_code == 200

    def test_key_without_the_scope_is_403_insufficient_scope(self, world, client):
        token, _ = owner_key(world, scopes=["people:read"])
        body = problem(client.get(URL, **bearer(token)), 403, "insufficient-scope")
        assert "api_keys:read" in body["detail"]

    def test_key_of_a_removed_creator_is_401_creator_removed(self, world, client):
        token, _ = make_key(world.account, world.members["admin"], scopes=["api_keys:read"])
        do_remove_member(world.membership("admin"), actor=world.actor("owner"))
        problem(client.get(URL, **bearer(token)), 401, "key-creator-removed")

    def test_key_of_a_deactivated_creator_is_refused(self, world, client):
        token, _ = owner_key(world)
        world.members["owner"].is_active = False
        world.members["owner"].save(update_fields=["is_active"])
        problem(client.get(URL, **bearer(token)), 401, "key-creator-removed")

    def test_each_failure_is_documented_at_its_problem_url(self, world, client):
        response = client.get("/problems/key-rolled")
        assert response.status_code == 200
        assert "grace period" in response.text


@pytest.mark.django_db
class TestRevocationAndRolling:
    def test_revocation_takes_effect_on_the_next_request(self, world, client):
        token, key = owner_key(world)
        assert client.get(URL, **bearer(token)).status_code == 200
        do_revoke_api_key(key, actor=world.actor("owner"))
        problem(client.get(URL, **bearer(token)), 401, "key-revoked")

    def test_rolled_key_works_during_the_grace_period(self, world, client):
        token, key = owner_key(world)
        new_token, _ = do_roll_api_key(key, actor=world.actor("owner"), grace_hours=2)
        with clock.travel(dt.timedelta(hours=1, minutes=59)):
            assert client.get(URL, **bearer(token)).status_code == 200
            assert client.get(URL, **bearer(new_token)).status_code == 200

    def test_rolled_key_is_401_key_rolled_after_the_grace_period(self, world, client):
        token, key = owner_key(world)
        new_token, _ = do_roll_api_key(key, actor=world.actor("owner"), grace_hours=2)
        with clock.travel(dt.timedelta(hours=2)):
            problem(client.get(URL, **bearer(token)), 401, "key-rolled")
            assert client.get(URL, **bearer(new_token)).status_code == 200


@pytest.mark.django_db
class TestEffectivePermissions:
    def test_permissions_are_scope_ceiling_and_creator_intersected(self, world):
        token, _ = owner_key(world, scopes=["people:read", "team:read"],
                             role_ceiling="analyst")
        principal = authenticate_token(token, "10.0.0.1")
        # Not people.unmask (analyst has it, no scope grants it), nor anything else the
        # owner holds beyond the analyst ceiling.
        assert principal.perms == {"people.read", "team.read"}
        assert principal.member == world.members["owner"]
        assert principal.account == world.account

    def test_principal_arrives_fully_loaded_in_one_query(
            self, world, django_assert_num_queries):
        token, _ = owner_key(world)
        authenticate_token(token, None)  # first use writes last_used_at
        with django_assert_num_queries(1):
            principal = authenticate_token(token, None)
            assert principal.account.name == "Acme"
            assert principal.member.email == "owner@acme.example"
            assert principal.membership.role == "owner"
            assert principal.membership.account == world.account
            assert principal.membership.member.email == "owner@acme.example"

    def test_custom_role_of_the_creator_bounds_the_key(self, world):
        from enclave.accounts.actions import do_save_custom_role

        token, _ = make_key(world.account, world.members["admin"], scopes=["people:write"])
        role = do_save_custom_role(world.account, "Readers", ["people.read", "team.read"],
                                   actor=world.actor("owner"))
        do_change_role(world.membership("admin"), role, actor=world.actor("owner"))
        assert authenticate_token(token, None).perms == {"people.read"}

    def test_ceiling_masks_personal_data_for_api_callers(self, world):
        token, _ = owner_key(world, scopes=["people:read"], role_ceiling="analyst")
        principal = authenticate_token(token, "10.0.0.1")
        assert visibility.field_level(principal.perms, "email") == visibility.MASKED

    def test_demoting_the_creator_narrows_the_key(self, world):
        token, _ = make_key(world.account, world.members["admin"], scopes=["people:write"])
        assert authenticate_token(token, None).perms == {"people.read", "people.write"}
        do_change_role(world.membership("admin"), "analyst", actor=world.actor("owner"))
        assert authenticate_token(token, None).perms == {"people.read"}

    def test_demoted_creator_loses_key_management_through_the_api(self, world, client):
        token, _ = make_key(world.account, world.members["admin"], scopes=["api_keys:read"])
        assert client.get(URL, **bearer(token)).status_code == 200
        do_change_role(world.membership("admin"), "user", actor=world.actor("owner"))
        problem(client.get(URL, **bearer(token)), 403, "forbidden")


@pytest.mark.django_db
class TestLastUsed:
    def test_first_use_records_time_and_address(self, world, client):
        token, key = owner_key(world)
        client.get(URL, REMOTE_ADDR="203.0.113.9", **bearer(token))
        key.refresh_from_db()
        assert key.last_used_ip == "203.0.113.9"
        assert key.last_used_at is not None

    def test_uses_within_a_minute_do_not_write_again(
            self, world, django_assert_num_queries):
        token, key = owner_key(world)
        authenticate_token(token, "203.0.113.9")
        # The key lookup is the only query: no UPDATE.
        with clock.travel(dt.timedelta(seconds=59)), django_assert_num_queries(1):
            authenticate_token(token, "203.0.113.10")
        key.refresh_from_db()
        assert key.last_used_ip == "203.0.113.9"

    def test_use_after_the_interval_writes_again(self, world):
        token, key = owner_key(world)
        authenticate_token(token, "203.0.113.9")
        with clock.travel(dt.timedelta(seconds=61)):
            authenticate_token(token, "203.0.113.10")
        key.refresh_from_db()
        assert key.last_used_ip == "203.0.113.10"


@pytest.mark.django_db
class TestKeyringRotation:
    def test_key_survives_rotation_and_its_hash_moves_to_the_new_version(self, world):
        from enclave.keys.actions import do_rotate_data_key

        token, key = owner_key(world)
        old_version = key.mac_version
        do_rotate_data_key("tokens", actor=None)
        assert authenticate_token(token, None).api_key_public_id == key.public_id
        key.refresh_from_db()
        assert key.mac_version == old_version + 1
        with clock.travel(dt.timedelta(minutes=2)):
            assert authenticate_token(token, None).api_key_public_id == key.public_id


@pytest.mark.django_db
class TestExposure:
    def test_key_sent_over_plain_http_is_marked_exposed_and_revoked(
            self, world, http_client, client):
        token, key = owner_key(world)
        response = http_client.get(URL, HTTP_HOST="localhost", **bearer(token))
        assert response.status_code == 403  # https-required
        key.refresh_from_db()
        assert key.exposed_at is not None
        assert key.revoked_at is not None
        problem(client.get(URL, **bearer(token)), 401, "key-exposed")

    def test_key_in_a_plain_http_query_string_is_marked_exposed(self, world, http_client):
        token, key = owner_key(world)
        http_client.get(f"/api/v1/health?api_key={token}", HTTP_HOST="localhost")
        key.refresh_from_db()
        assert key.exposed_at is not None

    def test_exposure_is_audited_by_public_id_only(self, world, http_client):
        from enclave.core.models import AuditEvent, AuditEventType

        token, key = owner_key(world)
        http_client.get(URL, HTTP_HOST="localhost", **bearer(token))
        row = AuditEvent.objects.get(event_type=AuditEventType.API_KEY_EXPOSED)
        assert row.target_id == key.public_id
        assert row.account_id == world.account.pk
        assert token not in str(row.extra_data)

    def test_forged_secret_over_plain_http_does_not_revoke_the_real_key(
            self, world, http_client):
        _, key = owner_key(world)
        forged = tokens.make_token("test", key.public_id)
        response = http_client.get(URL, HTTP_HOST="localhost", **bearer(forged))
        assert response.status_code == 403  # refused as plain HTTP, recorded as an exposure
        assert CredentialExposure.objects.filter(kind="authorization").count() == 1
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None

    def test_key_in_any_header_over_plain_http_is_revoked(self, world, http_client):
        token, key = owner_key(world)
        http_client.get(URL, HTTP_HOST="localhost", HTTP_X_UPSTREAM_CREDENTIAL=f"k={token}")
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None

    def test_key_in_any_query_parameter_over_plain_http_is_revoked(self, world, http_client):
        token, key = owner_key(world)
        http_client.get(f"{URL}?q={token}", HTTP_HOST="localhost")
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None

    def test_percent_encoded_key_in_the_query_over_plain_http_is_revoked(
            self, world, http_client):
        token, key = owner_key(world)
        http_client.get(f"{URL}?next={token.replace('_', '%5F')}", HTTP_HOST="localhost")
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None

    def test_key_in_the_path_over_plain_http_is_revoked(self, world, http_client):
        token, key = owner_key(world)
        http_client.get(f"/api/v1/people/{token}", HTTP_HOST="localhost")
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None

    def test_key_in_the_path_is_not_stored_by_the_exposure_records(self, world, http_client):
        from enclave.core.models import AuditEvent, CredentialExposure

        token, _ = owner_key(world)
        http_client.get(f"/api/v1/people/{token}", HTTP_HOST="localhost")
        exposure = CredentialExposure.objects.get()
        assert (exposure.kind, exposure.path) == ("path", "/api/v1/people/[credential]")
        assert AuditEvent.objects.exists()
        assert not [e for e in AuditEvent.objects.all() if token in str(e.extra_data)]

    def test_key_is_revoked_when_exposure_recording_is_over_its_limit(
            self, world, http_client, settings):
        from enclave.core.models import CredentialExposure

        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "exposure.ip": "1/min"}
        token, key = owner_key(world)
        with clock.frozen(clock.now().replace(second=1)):  # both requests in one window
            http_client.get(URL, HTTP_HOST="localhost", **bearer("flood-filler"))
            response = http_client.get(URL, HTTP_HOST="localhost", **bearer(token))
        assert response.status_code == 403
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
        assert CredentialExposure.objects.count() == 1  # the filler's row only


@pytest.mark.django_db
class TestKeyringRetirement:
    def test_tokens_version_protecting_usable_keys_cannot_be_retired(self, world):
        from enclave.keys.actions import do_retire_key_version, do_rotate_data_key
        from enclave.keys.errors import KeyInUse

        token, key = owner_key(world)
        do_rotate_data_key("tokens", actor=None)
        with pytest.raises(KeyInUse, match=r"apikeys\.ApiKey\.secret_mac"):
            do_retire_key_version("tokens", key.mac_version, actor=None)
        assert authenticate_token(token, None).api_key_public_id == key.public_id

    def test_tokens_version_can_be_retired_once_keys_moved_on(self, world):
        from enclave.keys.actions import do_retire_key_version, do_rotate_data_key

        token, key = owner_key(world)
        old_version = key.mac_version
        do_rotate_data_key("tokens", actor=None)
        authenticate_token(token, None)  # recorded use: the hash moves to the new version
        do_retire_key_version("tokens", old_version, actor=None)
        assert authenticate_token(token, None).api_key_public_id == key.public_id
