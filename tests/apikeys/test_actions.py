"""Create, roll, revoke, policy: permissions, validation, audit — and no stored secret."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from enclave.apikeys import actions
from enclave.apikeys.models import ApiKey, ApiKeyPolicy
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from tests.apikeys.factories import altered, make_key


def create(world, role="owner", **kw):
    kw.setdefault("scopes", ["people:read"])
    return make_key(world.account, world.members[role], **kw)


@pytest.mark.django_db
class TestCreate:
    def test_owner_creates_a_key_with_the_default_expiry_and_ceiling(self, world):
        token, key = create(world)
        assert token.startswith(f"enc_test_{key.public_id}_")
        assert key.role_ceiling == "owner"
        assert key.expires_at - key.created_at == dt.timedelta(days=90)
        assert key.state() == "active"

    @pytest.mark.parametrize("role", ["user", "analyst", "viewer"])
    def test_member_without_api_keys_manage_cannot_create(self, world, role):
        with pytest.raises(PermissionDenied):
            create(world, role)
        assert not ApiKey.objects.exists()

    def test_member_of_another_account_cannot_create(self, world):
        with pytest.raises(PermissionDenied):
            make_key(world.account, world.other_owner, scopes=["people:read"])
        assert not ApiKey.objects.exists()

    def test_ceiling_cannot_exceed_the_creators_role(self, world):
        with pytest.raises(ValidationError) as exc:
            create(world, "admin", role_ceiling="owner")
        assert "role_ceiling" in exc.value.message_dict
        assert not ApiKey.objects.exists()

    def test_admin_default_ceiling_is_admin(self, world):
        _, key = create(world, "admin")
        assert key.role_ceiling == "admin"

    def test_scope_beyond_the_ceiling_is_refused(self, world):
        with pytest.raises(ValidationError) as exc:
            create(world, scopes=["people:write"], role_ceiling="analyst")
        assert "people:write" in exc.value.message_dict["scopes"][0]

    @pytest.mark.parametrize("scopes", [[], ["people:delete"], "people:read,nope"])
    def test_missing_or_unknown_scopes_are_refused(self, world, scopes):
        with pytest.raises(ValidationError) as exc:
            create(world, scopes=scopes)
        assert "scopes" in exc.value.message_dict

    @pytest.mark.parametrize("days", [0, 366, "ten"])
    def test_expiry_outside_one_day_to_a_year_is_refused(self, world, days):
        with pytest.raises(ValidationError) as exc:
            create(world, expires_days=days)
        assert "expires_days" in exc.value.message_dict

    def test_expiry_of_a_year_is_accepted(self, world):
        _, key = create(world, expires_days=365)
        assert key.expires_at - key.created_at == dt.timedelta(days=365)

    @pytest.mark.parametrize("value", ["10.0.0.0/33", "not-an-ip", "300.1.1.1"])
    def test_invalid_allowlist_entries_are_refused(self, world, value):
        with pytest.raises(ValidationError) as exc:
            create(world, allowed_ips=value)
        assert "allowed_ips" in exc.value.message_dict

    def test_allowlist_is_normalised(self, world):
        _, key = create(world, allowed_ips="192.0.2.7/24, 2001:db8::1")
        assert key.allowed_ips == ["192.0.2.0/24", "2001:db8::1/128"]

    @pytest.mark.parametrize("name", ["", "   ", "x" * 101])
    def test_blank_or_overlong_names_are_refused(self, world, name):
        with pytest.raises(ValidationError) as exc:
            create(world, name=name)
        assert "name" in exc.value.message_dict

    def test_creation_is_audited_with_public_id_and_scopes(self, world):
        _, key = create(world, scopes=["people:read", "events:write"])
        row = AuditEvent.objects.get(event_type=AuditEventType.API_KEY_CREATED)
        assert row.actor == world.members["owner"]
        assert row.account_id == world.account.pk
        assert row.extra_data["api_key"] == key.public_id
        assert row.extra_data["scopes"] == ["events:write", "people:read"]


def _all_text_in_database() -> str:
    """Every row of the key and audit tables, as text."""
    with connection.cursor() as cursor:
        out = []
        for table in (ApiKey._meta.db_table, AuditEvent._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 — fixed table names
            out += [repr(row) for row in cursor.fetchall()]
    return "\n".join(out)


@pytest.mark.django_db
class TestNothingSecretIsStored:
    def test_token_and_its_secret_part_are_nowhere_in_the_database(self, world):
        token, key = create(world)
        actions.do_roll_api_key(key, actor=world.actor("owner"))
        secret = token.rsplit("_", 1)[1]
        text = _all_text_in_database()
        assert key.public_id in text
        assert token not in text
        assert secret not in text

    def test_stored_hash_is_keyed_not_a_plain_digest(self, world):
        import hashlib

        token, key = create(world)
        assert bytes(key.secret_mac) != hashlib.sha256(token.encode()).digest()
        assert actions.token_matches(key, token)
        assert not actions.token_matches(key, altered(token))


@pytest.mark.django_db
class TestRoll:
    def test_successor_keeps_scopes_ceiling_and_allowlist(self, world):
        _, key = create(world, scopes=["people:read", "team:read"], role_ceiling="analyst",
                        allowed_ips="192.0.2.0/24")
        token, successor = actions.do_roll_api_key(key, actor=world.actor("owner"))
        assert (successor.scopes, successor.role_ceiling, successor.allowed_ips) == (
            ["people:read", "team:read"], "analyst", ["192.0.2.0/24"])
        assert successor.predecessor == key
        assert token.startswith("enc_test_")

    def test_default_grace_period_is_24_hours(self, world):
        _, key = create(world)
        actions.do_roll_api_key(key, actor=world.actor("owner"))
        key.refresh_from_db()
        assert key.grace_until - key.rolled_at == dt.timedelta(hours=24)
        assert key.state() == "grace"

    @pytest.mark.parametrize("hours", [-1, 169, "x"])
    def test_grace_beyond_seven_days_is_refused(self, world, hours):
        _, key = create(world)
        with pytest.raises(ValidationError):
            actions.do_roll_api_key(key, actor=world.actor("owner"), grace_hours=hours)
        key.refresh_from_db()
        assert key.rolled_at is None

    def test_grace_of_seven_days_is_accepted(self, world):
        _, key = create(world)
        actions.do_roll_api_key(key, actor=world.actor("owner"), grace_hours=168)
        key.refresh_from_db()
        with clock.travel(dt.timedelta(hours=167)):
            assert key.state() == "grace"

    @pytest.mark.parametrize("how", ["revoked", "rolled", "expired"])
    def test_only_an_active_key_can_be_rolled(self, world, how):
        _, key = create(world, expires_days=1)
        owner = world.actor("owner")
        if how == "revoked":
            actions.do_revoke_api_key(key, actor=owner)
        elif how == "rolled":
            actions.do_roll_api_key(key, actor=owner)
        with clock.travel(dt.timedelta(days=2 if how == "expired" else 0)), \
                pytest.raises(actions.ApiKeyRuleError):
            actions.do_roll_api_key(key, actor=owner)

    def test_roll_by_a_member_below_the_ceiling_is_refused(self, world):
        _, key = create(world)  # ceiling owner
        with pytest.raises(ValidationError, match="cannot exceed your own role"):
            actions.do_roll_api_key(key, actor=world.actor("admin"))
        key.refresh_from_db()
        assert (key.rolled_at, ApiKey.objects.count()) == (None, 1)

    def test_roll_is_audited_naming_both_keys(self, world):
        _, key = create(world)
        _, successor = actions.do_roll_api_key(key, actor=world.actor("owner"))
        row = AuditEvent.objects.get(event_type=AuditEventType.API_KEY_ROLLED)
        assert row.extra_data["api_key"] == key.public_id
        assert row.extra_data["successor"] == successor.public_id


@pytest.mark.django_db
class TestRevoke:
    def test_revoke_is_audited_once(self, world):
        _, key = create(world)
        actions.do_revoke_api_key(key, actor=world.actor("admin"))
        actions.do_revoke_api_key(key, actor=world.actor("admin"))
        assert AuditEvent.objects.filter(event_type=AuditEventType.API_KEY_REVOKED).count() == 1
        assert ApiKey.objects.get(pk=key.pk).state() == "revoked"

    def test_member_without_api_keys_manage_cannot_revoke(self, world):
        _, key = create(world)
        with pytest.raises(PermissionDenied):
            actions.do_revoke_api_key(key, actor=world.actor("user"))
        assert ApiKey.objects.get(pk=key.pk).revoked_at is None


@pytest.mark.django_db
class TestPolicy:
    def test_owner_sets_the_key_age_policy_with_an_audit_row(self, world):
        actions.do_set_api_key_policy(world.account, max_age_days=30,
                                      actor=world.actor("owner"))
        assert ApiKeyPolicy.objects.get(account=world.account).max_age_days == 30
        row = AuditEvent.objects.get(event_type=AuditEventType.API_KEY_POLICY_CHANGED)
        assert row.extra_data == {"old": 90, "new": 30}

    def test_unchanged_policy_writes_no_audit_row(self, world):
        actions.do_set_api_key_policy(world.account, max_age_days=90,
                                      actor=world.actor("owner"))
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.API_KEY_POLICY_CHANGED).exists()

    def test_admin_cannot_change_the_policy(self, world):
        with pytest.raises(PermissionDenied, match=r"account\.manage"):
            actions.do_set_api_key_policy(world.account, max_age_days=30,
                                          actor=world.actor("admin"))
        assert not ApiKeyPolicy.objects.exists()

    @pytest.mark.parametrize("days", [0, 366, "abc"])
    def test_policy_outside_range_is_refused(self, world, days):
        with pytest.raises(ValidationError):
            actions.do_set_api_key_policy(world.account, max_age_days=days,
                                          actor=world.actor("owner"))
        assert not ApiKeyPolicy.objects.exists()
