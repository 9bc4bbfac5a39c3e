"""Identity pages decide by permission (the one table), never by role name: the invite
page needs ``team.manage``, account security ``account.manage``; the app menu shows an
area only to members whose role includes its permission; the home's counts are
aggregates any member sees."""

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


def app_menu(client) -> list[str]:
    page = client.get("/app/").text
    nav = re.search(r'<nav class="app-nav" aria-label="App">(.*?)</nav>', page, re.S)
    return re.findall(r'<a href="([^"]+)"', nav[1]) if nav else []


@pytest.mark.django_db
class TestInvitePage:
    def test_custom_role_with_team_manage_opens_the_invite_page(self, world):
        client = with_custom_role(world, "viewer", ["team.manage"])
        assert client.get("/app/account/invite/").status_code == 200

    def test_custom_role_with_team_manage_sends_the_invitation(self, world):
        # Everything a viewer holds, plus team.manage: it may grant the viewer role.
        client = with_custom_role(world, "viewer", ["team.manage", "segments.read",
                                                    "email.read"])
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
class TestAppMenu:
    """The shell's menu (access.navigation) for custom roles: areas follow permissions."""

    def test_custom_role_with_audit_read_sees_the_audit_log(self, world):
        client = with_custom_role(world, "viewer", ["audit.read"])
        assert app_menu(client) == ["/app/", "/app/people/", "/app/topics/", "/app/audit/"]

    def test_custom_role_with_api_keys_manage_sees_api_keys(self, world):
        client = with_custom_role(world, "viewer", ["api_keys.manage"])
        assert app_menu(client) == ["/app/", "/app/people/", "/app/topics/",
                                    "/app/api-keys/"]

    def test_custom_role_with_segments_read_sees_segments(self, world):
        client = with_custom_role(world, "viewer", ["segments.read"])
        assert app_menu(client) == ["/app/", "/app/people/", "/app/segments/",
                                    "/app/topics/"]


@pytest.mark.django_db
class TestHomeCounts:
    def test_home_shows_people_subscribers_and_segments_to_any_member(self, world):
        from enclave.audience.actions import do_create_segment
        from enclave.audience.subscriptions import do_change_subscription, do_create_topic

        owner = world.actor("owner")
        topic = do_create_topic(world.account, "news", "News", consent_text="x",
                                double_opt_in=False, actor=owner)
        do_change_subscription(world.person, topic, True, method="app", actor=owner)
        do_create_segment(world.account, "L", "static", actor=owner)
        page = world.client("viewer").get("/app/").text
        counts = dict(re.findall(r'<dt>([^<]+)</dt><dd id="count-[a-z]+">(\d+)</dd>', page))
        assert counts == {"People": "1", "Subscribed": "1", "Segments": "1"}
