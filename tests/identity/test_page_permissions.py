"""Identity pages decide by permission (the one table), never by role name: the invite
page needs ``team.manage``, account security ``account.manage``; the /app/ home links
to People, Team and Audit only for members whose role includes their read permission."""

from __future__ import annotations

import re

import pytest

from enclave.accounts.actions import do_change_role, do_save_custom_role
from enclave.accounts.models import Invitation
from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()


def with_custom_role(world: World, role: str, perms: list[str]):
    """Give the ``role`` member of the world a custom role holding ``perms``."""
    custom = do_save_custom_role(world.account, f"Custom {len(perms)}", perms,
                                 actor=world.actor("owner"))
    do_change_role(world.membership(role), custom, actor=world.actor("owner"))
    return world.client(role)


def home_links(client) -> list[str]:
    page = client.get("/app/").text
    areas = re.search(r'<ul id="app-areas">(.*?)</ul>', page, re.S)
    return re.findall(r'<a href="([^"]+)">', areas[1]) if areas else []


@pytest.mark.django_db
class TestInvitePage:
    def test_custom_role_with_team_manage_opens_the_invite_page(self, world):
        client = with_custom_role(world, "viewer", ["team.manage"])
        assert client.get("/app/account/invite/").status_code == 200

    def test_custom_role_with_team_manage_sends_the_invitation(self, world):
        client = with_custom_role(world, "viewer", ["team.manage"])
        page = client.get("/app/account/invite/").text
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        client.post("/app/account/invite/", {"csrfmiddlewaretoken": csrf,
                                             "email": "new.hire@acme.example", "role": "viewer"})
        assert Invitation.objects.filter(email="new.hire@acme.example").exists()

    def test_custom_role_without_team_manage_is_refused(self, world):
        client = with_custom_role(world, "admin", ["team.read", "people.write"])
        assert client.get("/app/account/invite/").status_code == 403

    def test_home_offers_the_invite_link_by_permission(self, world):
        client = with_custom_role(world, "viewer", ["team.manage"])
        assert "/app/account/invite/" in client.get("/app/").text
        assert "/app/account/invite/" not in world.client("user").get("/app/").text


@pytest.mark.django_db
class TestAccountSecurityPage:
    def test_owner_opens_account_security(self, world):
        assert world.client("owner").get("/app/account/security/").status_code == 200

    def test_admin_without_account_manage_is_refused(self, world):
        assert world.client("admin").get("/app/account/security/").status_code == 403

    def test_custom_role_cannot_hold_account_manage(self, world):
        client = with_custom_role(world, "admin", ["team.manage", "audit.read"])
        assert client.get("/app/account/security/").status_code == 403
        assert "/app/account/security/" not in client.get("/app/").text


@pytest.mark.django_db
class TestHomeLinks:
    @pytest.mark.parametrize(("role", "expected"), [
        ("owner", ["/app/people/", "/app/team/", "/app/audit/", "/app/api-keys/"]),
        ("admin", ["/app/people/", "/app/team/", "/app/audit/", "/app/api-keys/"]),
        ("user", ["/app/people/", "/app/team/"]),
        ("analyst", ["/app/people/", "/app/team/"]),
        ("viewer", ["/app/team/"]),
    ])
    def test_links_follow_the_roles_permissions(self, world, role, expected):
        assert home_links(world.client(role)) == expected

    def test_custom_role_with_audit_read_only_sees_the_audit_link(self, world):
        client = with_custom_role(world, "viewer", ["audit.read"])
        assert home_links(client) == ["/app/audit/"]

    def test_custom_role_with_api_keys_manage_sees_the_api_keys_link(self, world):
        client = with_custom_role(world, "viewer", ["api_keys.manage"])
        assert home_links(client) == ["/app/api-keys/"]

    def test_custom_role_with_people_read_sees_the_people_link(self, world):
        client = with_custom_role(world, "viewer", ["people.read"])
        assert home_links(client) == ["/app/people/"]
