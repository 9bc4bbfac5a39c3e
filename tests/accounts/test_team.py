"""Team management: change role, remove, transfer ownership, custom roles."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import TestCase

from enclave.accounts import actions
from enclave.accounts.models import Membership, Role
from enclave.accounts.permissions import has_perm
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import MemberSession
from tests.people.world import World, new_member, signed_in


@pytest.fixture
def world(db) -> World:
    return World()


def change(world, role_of_target, new_role, *, by="owner"):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return actions.do_change_role(world.membership(role_of_target), new_role,
                                      actor=world.members[by])


@pytest.mark.django_db
class TestChangeRole:
    def test_admin_changes_a_user_to_analyst_with_an_audit_row(self, world):
        change(world, "user", "analyst", by="admin")
        assert world.membership("user").role == "analyst"
        event = AuditEvent.objects.get(event_type=AuditEventType.ROLE_CHANGED)
        assert event.extra_data == {"old": "user", "new": "analyst"}
        assert event.target_id == str(world.members["user"].pk)

    def test_member_without_team_manage_is_refused(self, world):
        with pytest.raises(PermissionDenied):
            change(world, "analyst", "viewer", by="user")
        assert world.membership("analyst").role == "analyst"

    def test_admin_cannot_make_an_owner(self, world):
        with pytest.raises(PermissionDenied, match="Only owners"):
            change(world, "user", "owner", by="admin")

    def test_admin_cannot_demote_an_owner(self, world):
        new_member("second@acme.example", world.account, "owner")
        with pytest.raises(PermissionDenied, match="Only owners"):
            change(world, "owner", "user", by="admin")

    def test_last_owner_cannot_be_demoted(self, world):
        with pytest.raises(actions.TeamRuleError, match="last owner"):
            change(world, "owner", "admin")
        assert world.membership("owner").role == "owner"

    def test_an_owner_can_step_down_when_another_owner_exists(self, world):
        new_member("second@acme.example", world.account, "owner")
        change(world, "owner", "admin")
        assert world.membership("owner").role == "admin"

    def test_unknown_role_is_refused(self, world):
        with pytest.raises(ValidationError):
            change(world, "user", "superuser")

    def test_role_change_ends_the_members_sessions_in_the_account(self, world):
        victim = signed_in(world.members["admin"])
        assert victim.get("/app/team/").status_code == 200
        change(world, "admin", "viewer")
        assert not MemberSession.objects.filter(member=world.members["admin"],
                                                revoked_at__isnull=True).exists()
        assert victim.get("/app/team/").status_code == 302

    def test_unchanged_role_writes_no_audit_row(self, world):
        change(world, "user", "user")
        assert not AuditEvent.objects.filter(event_type=AuditEventType.ROLE_CHANGED).exists()


@pytest.mark.django_db
class TestRemoveMember:
    def test_admin_removes_a_user(self, world):
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_remove_member(world.membership("user"), actor=world.members["admin"])
        assert not Membership.objects.filter(member=world.members["user"]).exists()
        assert AuditEvent.objects.filter(event_type=AuditEventType.MEMBER_REMOVED).exists()

    def test_last_owner_cannot_be_removed(self, world):
        with pytest.raises(actions.TeamRuleError, match="last owner"):
            actions.do_remove_member(world.membership("owner"), actor=world.members["owner"])

    def test_admin_cannot_remove_an_owner(self, world):
        new_member("second@acme.example", world.account, "owner")
        with pytest.raises(PermissionDenied):
            actions.do_remove_member(world.membership("owner"), actor=world.members["admin"])


@pytest.mark.django_db
class TestTransferOwnership:
    def test_owner_hands_over_and_becomes_admin(self, world):
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_transfer_ownership(world.membership("user"),
                                          actor=world.members["owner"])
        assert world.membership("user").role == "owner"
        assert world.membership("owner").role == "admin"
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.OWNERSHIP_TRANSFERRED).exists()

    def test_admin_cannot_transfer(self, world):
        with pytest.raises(PermissionDenied):
            actions.do_transfer_ownership(world.membership("user"),
                                          actor=world.members["admin"])


@pytest.mark.django_db
class TestCustomRoles:
    def test_owner_defines_a_role_with_implied_permissions(self, world):
        role = actions.do_save_custom_role(world.account, "Editors", ["people.write"],
                                           actor=world.members["owner"])
        assert role.permissions == ["people.read", "people.write"]
        assert AuditEvent.objects.filter(event_type=AuditEventType.CUSTOM_ROLE_SAVED).exists()

    def test_custom_role_grants_exactly_its_permissions(self, world):
        role = actions.do_save_custom_role(world.account, "Exporters", ["people.export"],
                                           actor=world.members["owner"])
        change(world, "viewer", role)
        membership = world.membership("viewer")
        assert has_perm(membership, "people.export")
        assert not has_perm(membership, "team.read")

    def test_billing_cannot_be_put_in_a_custom_role(self, world):
        with pytest.raises(ValidationError, match=r"billing\.manage"):
            actions.do_save_custom_role(world.account, "Payers", ["billing.manage"],
                                        actor=world.members["owner"])
        assert not Role.objects.exists()

    def test_admin_cannot_define_roles(self, world):
        with pytest.raises(PermissionDenied):
            actions.do_save_custom_role(world.account, "Editors", ["people.read"],
                                        actor=world.members["admin"])

    def test_built_in_name_is_refused(self, world):
        with pytest.raises(ValidationError):
            actions.do_save_custom_role(world.account, "Owner", ["people.read"],
                                        actor=world.members["owner"])

    def test_another_accounts_role_cannot_be_assigned(self, world):
        role = actions.do_save_custom_role(world.other, "Theirs", ["people.read"],
                                           actor=world.other_owner)
        with pytest.raises(ValidationError):
            change(world, "viewer", role)


@pytest.mark.django_db
class TestTeamPages:
    def test_role_change_page_asks_for_reauthentication_after_the_window(self, world):
        client = world.client("owner")
        target = world.membership("user")
        with clock.travel(dt.timedelta(minutes=11)):
            response = client.post(f"/app/team/{target.pk}/role/", {"role": "analyst"})
        assert response.status_code == 302
        assert response["Location"].startswith("/app/reauth/")
        assert world.membership("user").role == "user"

    def test_role_change_page_changes_the_role(self, world):
        target = world.membership("user")
        response = world.client("owner").post(f"/app/team/{target.pk}/role/",
                                              {"role": "analyst"})
        assert response.status_code == 302
        assert world.membership("user").role == "analyst"

    def test_demoting_the_last_owner_through_the_page_is_a_clear_409(self, world):
        me = world.membership("owner")
        response = world.client("owner").post(f"/app/team/{me.pk}/role/", {"role": "admin"})
        assert response.status_code == 409
        assert "last owner" in response.text

    def test_unknown_role_through_the_page_is_422(self, world):
        target = world.membership("user")
        response = world.client("owner").post(f"/app/team/{target.pk}/role/",
                                              {"role": "custom:999"})
        assert response.status_code == 422

    def test_owner_defines_a_custom_role_on_the_roles_page(self, world):
        response = world.client("owner").post("/app/team/roles/", {
            "name": "Readers", "permissions": ["people.read", "audit.read"]})
        assert response.status_code == 302
        assert Role.objects.get(account=world.account).permissions == [
            "audit.read", "people.read"]

    def test_roles_page_shows_the_matrix(self, world):
        response = world.client("viewer").get("/app/team/roles/")
        assert "billing.manage" in response.text
