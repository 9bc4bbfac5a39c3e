"""Accounts: invitations, the account switcher, owner security settings."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.accounts.models import Account, Invitation, Membership
from enclave.core import clock
from enclave.identity.models import Member, MemberSession
from tests.identity.helpers import (
    PASSWORD,
    https_client,
    last_link,
    log_in,
    mailing,
    make_member,
)


@pytest.fixture
def owner():
    return make_member("owner@example.com", account_name="Acme")


@pytest.fixture
def owner_client(owner):
    client = https_client()
    log_in(client, "owner@example.com")
    return client


def invite(client, email="new@example.com", role="user"):
    with mailing():
        return client.post("/app/account/invite/", {"email": email, "role": role})


@pytest.mark.django_db
class TestInvitations:
    def test_owner_invites_by_email_with_a_role(self, owner_client):
        response = invite(owner_client, role="analyst")
        assert "Invitation sent" in response.text
        assert Invitation.objects.get().role == "analyst"

    def test_token_is_stored_only_as_a_hash(self, owner_client):
        invite(owner_client)
        assert not Invitation.objects.filter(token_hash=last_link("/app/invite/")).exists()

    def test_accepting_creates_the_member_with_the_role(self, owner_client):
        invite(owner_client, role="viewer")
        client = https_client()
        response = client.post(f"/app/invite/{last_link('/app/invite/')}",
                               {"password": PASSWORD})
        assert response.status_code == 302
        membership = Membership.objects.get(member__email="new@example.com")
        assert (membership.account.name, membership.role) == ("Acme", "viewer")
        assert client.get("/app/").status_code == 200

    def test_accepting_links_an_existing_member_to_a_second_account(self, owner_client):
        make_member("new@example.com", account_name="Other")
        invite(owner_client)
        token = last_link("/app/invite/")
        member_client = https_client()
        log_in(member_client, "new@example.com")
        member_client.post(f"/app/invite/{token}")
        names = set(Membership.objects.filter(member__email="new@example.com")
                    .values_list("account__name", flat=True))
        assert names == {"Acme", "Other"}

    def test_invitation_is_single_use(self, owner_client):
        invite(owner_client)
        token = last_link("/app/invite/")
        https_client().post(f"/app/invite/{token}", {"password": PASSWORD})
        again = https_client().post(f"/app/invite/{token}", {"password": PASSWORD})
        assert again.status_code == 404
        assert Member.objects.filter(email="new@example.com").count() == 1

    def test_invitation_expires_after_seven_days(self, owner_client):
        invite(owner_client)
        token = last_link("/app/invite/")
        with clock.travel(dt.timedelta(days=7, minutes=1)):
            response = https_client().post(f"/app/invite/{token}", {"password": PASSWORD})
        assert response.status_code == 404
        assert not Member.objects.filter(email="new@example.com").exists()

    def test_invitation_for_another_address_is_refused_when_signed_in(self, owner_client):
        make_member("someone@example.com", account_name="Else")
        invite(owner_client)
        token = last_link("/app/invite/")
        other = https_client()
        log_in(other, "someone@example.com")
        response = other.post(f"/app/invite/{token}")
        assert response.status_code == 422
        assert "for another email address" in response.text
        assert Invitation.objects.get().accepted_at is None

    def test_users_cannot_invite(self, owner):
        make_member("user@example.com", account=Account.objects.get(), role="user")
        client = https_client()
        log_in(client, "user@example.com")
        response = invite(client)
        assert response.status_code == 403
        assert not Invitation.objects.exists()

    def test_admins_cannot_invite_owners(self, owner):
        make_member("admin@example.com", account=Account.objects.get(), role="admin")
        client = https_client()
        log_in(client, "admin@example.com")
        response = invite(client, role="owner")
        assert response.status_code == 422
        assert not Invitation.objects.exists()

    def test_malformed_email_is_refused(self, owner_client):
        response = invite(owner_client, email="not an email")
        assert response.status_code == 422
        assert not Invitation.objects.exists()

    def test_malformed_token_gets_the_invalid_link_page(self):
        response = https_client().get("/app/invite/" + "z" * 400)
        assert response.status_code == 404
        assert "This invitation link is not valid" in response.text


@pytest.mark.django_db
class TestAccountSwitcher:
    def test_member_of_two_accounts_switches_and_the_session_id_changes(self, owner,
                                                                         owner_client):
        second = Account.objects.create(name="Globex")
        Membership.objects.create(member=owner, account=second, role="viewer")
        before = owner_client.session.session_key
        owner_client.post("/app/account/switch/", {"account": second.pk})
        assert owner_client.session.session_key != before
        assert "signed in to <strong>Globex</strong> as viewer" in owner_client.get("/app/").text
        assert MemberSession.objects.get().account_id == second.pk

    def test_switching_to_an_account_without_membership_is_refused(self, owner_client):
        stranger = Account.objects.create(name="Stranger")
        response = owner_client.post("/app/account/switch/", {"account": stranger.pk})
        assert response.status_code == 403
        assert MemberSession.objects.get().account.name == "Acme"

    def test_switcher_lists_every_account(self, owner, owner_client):
        Membership.objects.create(member=owner, account=Account.objects.create(name="Globex"),
                                  role="user")
        page = owner_client.get("/app/").text
        assert '<label for="id_account">Switch account</label>' in page
        assert "Globex (user)" in page
        assert "Acme (owner)" in page


@pytest.mark.django_db
class TestAccountSecurity:
    def test_owner_sets_the_idle_timeout(self, owner_client):
        owner_client.post("/app/account/security/", {"idle_timeout_minutes": 240})
        assert Account.objects.get().idle_timeout_minutes == 240

    @pytest.mark.parametrize("value", [4, 721, -1])
    def test_idle_timeout_outside_5_to_720_is_refused(self, owner_client, value):
        response = owner_client.post("/app/account/security/", {"idle_timeout_minutes": value})
        assert response.status_code == 422
        assert Account.objects.get().idle_timeout_minutes == 30

    def test_settings_need_recent_authentication(self, owner_client):
        with clock.travel(dt.timedelta(minutes=11)):
            response = owner_client.post("/app/account/security/",
                                         {"idle_timeout_minutes": 240})
        assert response.status_code == 302
        assert response["Location"].startswith("/app/reauth/")
        assert Account.objects.get().idle_timeout_minutes == 30

    def test_admin_cannot_change_security_settings(self, owner):
        make_member("admin@example.com", account=Account.objects.get(), role="admin")
        client = https_client()
        log_in(client, "admin@example.com")
        response = client.post("/app/account/security/", {"idle_timeout_minutes": 240})
        assert response.status_code == 403
        assert Account.objects.get().idle_timeout_minutes == 30
