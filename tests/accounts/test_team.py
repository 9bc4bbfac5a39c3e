"""Team management: change role, remove, transfer ownership, custom roles."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import TestCase

from enclave.access.permissions import ROLE_PERMISSIONS, Permission
from enclave.access.principal import permissions_of
from enclave.accounts import actions
from enclave.accounts.models import Invitation, Membership, Role
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import MemberSession
from tests.people.world import World, new_member, signed_in
from tests.principals import acting


@pytest.fixture
def world(db) -> World:
    return World()


def change(world, role_of_target, new_role, *, by="owner"):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return actions.do_change_role(world.membership(role_of_target), new_role,
                                      actor=world.actor(by))


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
        with pytest.raises(PermissionDenied, match="cannot grant owner"):
            change(world, "user", "owner", by="admin")
        assert world.membership("user").role == "user"

    def test_admin_cannot_demote_an_owner(self, world):
        new_member("second@acme.example", world.account, "owner")
        with pytest.raises(PermissionDenied, match="holds permissions you do not have"):
            change(world, "owner", "user", by="admin")
        assert world.membership("owner").role == "owner"

    def test_the_last_owner_cannot_demote_themselves(self, world):
        with pytest.raises(PermissionDenied, match="your own membership"):
            change(world, "owner", "admin")
        assert world.membership("owner").role == "owner"

    def test_another_owner_can_demote_an_owner(self, world):
        second = new_member("second@acme.example", world.account, "owner")
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_change_role(world.membership("owner"), "admin",
                                   actor=acting(second, world.account))
        assert world.membership("owner").role == "admin"

    def test_unknown_role_is_refused(self, world):
        with pytest.raises(ValidationError):
            change(world, "user", "superuser")
        assert world.membership("user").role == "user"

    def test_role_change_ends_the_members_sessions_in_the_account(self, world):
        victim = signed_in(world.members["admin"])
        assert victim.get("/app/team/").status_code == 200
        change(world, "admin", "viewer")
        assert not MemberSession.objects.filter(member=world.members["admin"],
                                                revoked_at__isnull=True).exists()
        response = victim.get("/app/team/")
        assert (response.status_code, response["Location"]) == (
            302, "/app/login/?ended=1&next=%2Fapp%2Fteam%2F")

    def test_unchanged_role_writes_no_audit_row(self, world):
        change(world, "user", "user")
        assert not AuditEvent.objects.filter(event_type=AuditEventType.ROLE_CHANGED).exists()


@pytest.mark.django_db
class TestRemoveMember:
    def test_admin_removes_a_user(self, world):
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_remove_member(world.membership("user"), actor=world.actor("admin"))
        assert not Membership.objects.filter(member=world.members["user"]).exists()
        event = AuditEvent.objects.get(event_type=AuditEventType.MEMBER_REMOVED)
        assert (event.target_id, event.extra_data) == (str(world.members["user"].pk),
                                                       {"role": "user"})

    def test_the_last_owner_cannot_remove_themselves(self, world):
        with pytest.raises(PermissionDenied, match="your own membership"):
            actions.do_remove_member(world.membership("owner"), actor=world.actor("owner"))
        assert world.membership("owner").role == "owner"

    def test_admin_cannot_remove_themselves(self, world):
        with pytest.raises(PermissionDenied, match="your own membership"):
            actions.do_remove_member(world.membership("admin"), actor=world.actor("admin"))
        assert Membership.objects.filter(member=world.members["admin"]).exists()

    def test_admin_cannot_remove_an_owner(self, world):
        new_member("second@acme.example", world.account, "owner")
        with pytest.raises(PermissionDenied, match="holds permissions you do not have"):
            actions.do_remove_member(world.membership("owner"), actor=world.actor("admin"))
        assert world.membership("owner").role == "owner"


@pytest.mark.django_db
class TestTransferOwnership:
    def test_owner_hands_over_and_becomes_admin(self, world):
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_transfer_ownership(world.membership("user"),
                                          actor=world.actor("owner"))
        assert world.membership("user").role == "owner"
        assert world.membership("owner").role == "admin"
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.OWNERSHIP_TRANSFERRED).exists()

    def test_admin_cannot_transfer(self, world):
        with pytest.raises(PermissionDenied, match=r"account\.manage"):
            actions.do_transfer_ownership(world.membership("user"),
                                          actor=world.actor("admin"))
        assert (world.membership("user").role, world.membership("admin").role) == (
            "user", "admin")
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.OWNERSHIP_TRANSFERRED).exists()


@pytest.mark.django_db
class TestCustomRoles:
    def test_owner_defines_a_role_with_implied_permissions(self, world):
        role = actions.do_save_custom_role(world.account, "Editors", ["people.write"],
                                           actor=world.actor("owner"))
        assert role.permissions == ["people.read", "people.write"]
        assert AuditEvent.objects.filter(event_type=AuditEventType.CUSTOM_ROLE_SAVED).exists()

    def test_custom_role_grants_exactly_its_permissions(self, world):
        role = actions.do_save_custom_role(world.account, "Exporters", ["people.export"],
                                           actor=world.actor("owner"))
        change(world, "viewer", role)
        assert permissions_of(world.membership("viewer")) == {
            Permission.PEOPLE_EXPORT, Permission.PEOPLE_READ}

    def test_billing_cannot_be_put_in_a_custom_role(self, world):
        with pytest.raises(ValidationError, match=r"billing\.manage"):
            actions.do_save_custom_role(world.account, "Payers", ["billing.manage"],
                                        actor=world.actor("owner"))
        assert not Role.objects.exists()

    def test_admin_cannot_define_roles(self, world):
        with pytest.raises(PermissionDenied, match=r"account\.manage"):
            actions.do_save_custom_role(world.account, "Editors", ["people.read"],
                                        actor=world.actor("admin"))
        assert not Role.objects.exists()

    def test_built_in_name_is_refused(self, world):
        with pytest.raises(ValidationError, match="not a built-in role"):
            actions.do_save_custom_role(world.account, "Owner", ["people.read"],
                                        actor=world.actor("owner"))
        assert not Role.objects.exists()

    def test_another_accounts_role_cannot_be_assigned(self, world):
        role = actions.do_save_custom_role(world.other, "Theirs", ["people.read"],
                                           actor=world.other_actor())
        with pytest.raises(ValidationError):
            change(world, "viewer", role)
        assert (world.membership("viewer").role,
                world.membership("viewer").custom_role) == ("viewer", None)


@pytest.mark.django_db
class TestTeamPages:
    def test_role_change_page_asks_for_reauthentication_after_the_window(self, world):
        client = world.client("owner")
        target = world.membership("user")
        with clock.travel(dt.timedelta(minutes=11)):
            response = client.post(f"/app/team/{target.pk}/role/", {"role": "analyst"})
        assert (response.status_code, response["Location"]) == (
            302, f"/app/reauth/?next=%2Fapp%2Fteam%2F{target.pk}%2Frole%2F")
        assert world.membership("user").role == "user"

    def test_role_change_page_changes_the_role(self, world):
        target = world.membership("user")
        response = world.client("owner").post(f"/app/team/{target.pk}/role/",
                                              {"role": "analyst"})
        assert (response.status_code, response["Location"]) == (302, "/app/team/")
        assert world.membership("user").role == "analyst"

    def test_changing_ones_own_role_through_the_page_is_a_clear_403(self, world):
        me = world.membership("owner")
        response = world.client("owner").post(f"/app/team/{me.pk}/role/", {"role": "admin"})
        assert response.status_code == 403
        assert "your own membership" in response.text
        assert world.membership("owner").role == "owner"

    def test_unknown_role_through_the_page_is_422(self, world):
        target = world.membership("user")
        response = world.client("owner").post(f"/app/team/{target.pk}/role/",
                                              {"role": "custom:999"})
        assert response.status_code == 422
        assert world.membership("user").role == "user"

    @pytest.mark.parametrize("value", ["custom:abc", "custom:", "custom:1e3", "custom:²",
                                       "custom:" + "9" * 40])
    def test_malformed_custom_role_through_the_page_is_422(self, world, value):
        target = world.membership("user")
        response = world.client("owner").post(f"/app/team/{target.pk}/role/",
                                              {"role": value})
        assert response.status_code == 422
        assert world.membership("user").role == "user"

    def test_owner_defines_a_custom_role_on_the_roles_page(self, world):
        response = world.client("owner").post("/app/team/roles/", {
            "name": "Readers", "permissions": ["people.read", "audit.read"]})
        assert (response.status_code, response["Location"]) == (302, "/app/team/roles/")
        assert Role.objects.get(account=world.account).permissions == [
            "audit.read", "people.read"]

    def test_roles_page_shows_the_matrix(self, world):
        response = world.client("viewer").get("/app/team/roles/")
        assert response.status_code == 200
        assert "billing.manage" in response.text


@pytest.mark.django_db
class TestGrantEscalation:
    """A member grants only what they hold, and never changes their own membership."""

    @pytest.fixture
    def manager(self, world):
        """A custom role holding team.manage and what a viewer holds — nothing more."""
        viewer = sorted(p.value for p in ROLE_PERMISSIONS["viewer"])
        role = actions.do_save_custom_role(world.account, "Team managers",
                                           ["team.manage", *viewer],
                                           actor=world.actor("owner"))
        member = new_member("manager@acme.example", world.account, "viewer")
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_change_role(Membership.objects.get(member=member), role,
                                   actor=world.actor("owner"))
        return member

    def _membership(self, member):
        return Membership.objects.get(member=member)

    def test_team_manager_cannot_make_themselves_admin(self, world, manager):
        with pytest.raises(PermissionDenied, match="your own membership"):
            actions.do_change_role(self._membership(manager), "admin",
                                   actor=acting(manager, world.account))
        assert self._membership(manager).custom_role.name == "Team managers"

    def test_team_manager_cannot_make_another_member_admin(self, world, manager):
        with pytest.raises(PermissionDenied, match="cannot grant admin"):
            change_by(manager, world, "viewer", "admin")
        assert world.membership("viewer").role == "viewer"

    def test_team_manager_cannot_invite_an_admin(self, world, manager):
        with pytest.raises(PermissionDenied, match="cannot grant admin"):
            actions.do_invite_member(world.account, "new@acme.example", "admin",
                                     actor=acting(manager, world.account))
        assert not Invitation.objects.exists()

    def test_team_manager_invites_a_viewer(self, world, manager):
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_invite_member(world.account, "new@acme.example", "viewer",
                                     actor=acting(manager, world.account))
        invitation = Invitation.objects.get()
        assert (invitation.email, invitation.role, invitation.invited_by) == (
            "new@acme.example", "viewer", manager)

    def test_team_manager_cannot_demote_a_member_with_more_rights(self, world, manager):
        with pytest.raises(PermissionDenied, match="holds permissions you do not have"):
            change_by(manager, world, "user", "viewer")
        assert world.membership("user").role == "user"

    def test_team_manager_cannot_remove_a_member_with_more_rights(self, world, manager):
        with pytest.raises(PermissionDenied, match="holds permissions you do not have"):
            actions.do_remove_member(world.membership("user"),
                                     actor=acting(manager, world.account))
        assert world.membership("user").role == "user"

    def test_team_manager_may_grant_a_role_within_their_own_rights(self, world, manager):
        analyst_like = actions.do_save_custom_role(world.account, "Readers of the team",
                                                   ["team.read"], actor=world.actor("owner"))
        change_by(manager, world, "viewer", analyst_like)
        assert world.membership("viewer").custom_role == analyst_like

    def test_team_manager_cannot_define_a_role(self, world, manager):
        with pytest.raises(PermissionDenied, match=r"account\.manage"):
            actions.do_save_custom_role(world.account, "Mine", ["team.manage"],
                                        actor=acting(manager, world.account))
        assert not Role.objects.filter(name="Mine").exists()

    def test_admin_cannot_hand_out_a_custom_role_with_more_than_they_hold(self, world):
        # A role holding audit.read is fine for an admin; a manipulated role row holding an
        # owner-only permission grants nothing (stored codenames are filtered), so
        # assigning it is within the admin's rights and escalates nothing.
        role = Role.objects.create(account=world.account, name="Sneaky",
                                   permissions=["account.manage", "billing.manage"])
        change(world, "viewer", role, by="admin")
        assert permissions_of(world.membership("viewer")) == frozenset()


def change_by(member, world, role_of_target, new_role):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return actions.do_change_role(world.membership(role_of_target), new_role,
                                      actor=acting(member, world.account))


@pytest.mark.django_db
class TestInvitationGrantAtAcceptance:
    """An invitation grants its role only while the inviter may still grant it: the
    grant rule is checked again when the invitation is accepted."""

    def _invite_as_admin_by_admin(self, world) -> str:
        """The invitation link's token, as mailed by the worker."""
        from tests.identity.helpers import last_link, mailing

        with mailing():
            actions.do_invite_member(world.account, "late@acme.example", "admin",
                                     actor=world.actor("admin"))
        return last_link("/app/invite/")

    def test_invitation_of_an_inviter_demoted_since_is_refused(self, world):
        from tests.identity.helpers import PASSWORD

        token = self._invite_as_admin_by_admin(world)
        change(world, "admin", "user")
        with pytest.raises(actions.InvitationError, match="can no longer grant"):
            actions.do_accept_invitation(token, password=PASSWORD)
        assert not Membership.objects.filter(member__email="late@acme.example").exists()

    def test_invitation_of_an_inviter_removed_since_is_refused(self, world):
        from tests.identity.helpers import PASSWORD

        token = self._invite_as_admin_by_admin(world)
        with TestCase.captureOnCommitCallbacks(execute=True):
            actions.do_remove_member(world.membership("admin"), actor=world.actor("owner"))
        with pytest.raises(actions.InvitationError, match="can no longer grant"):
            actions.do_accept_invitation(token, password=PASSWORD)
        assert not Membership.objects.filter(member__email="late@acme.example").exists()

    def test_invitation_within_the_inviters_current_rights_is_accepted(self, world):
        from tests.identity.helpers import PASSWORD

        token = self._invite_as_admin_by_admin(world)
        member = actions.do_accept_invitation(token, password=PASSWORD)
        assert Membership.objects.get(member=member, account=world.account).role == "admin"

    def test_invitation_page_of_a_demoted_inviter_says_so_and_adds_nobody(self, world):
        from tests.identity.helpers import PASSWORD, https_client

        token = self._invite_as_admin_by_admin(world)
        change(world, "admin", "viewer")
        response = https_client().post(f"/app/invite/{token}", {"password": PASSWORD})
        assert response.status_code == 422
        assert "can no longer grant" in response.text
        assert not Membership.objects.filter(member__email="late@acme.example").exists()
