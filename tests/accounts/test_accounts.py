"""Accounts: invitations, the account switcher, owner security settings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import TestCase

from enclave.accounts.models import Account, Invitation, Membership
from enclave.core import clock
from enclave.identity.models import Member, MemberSession
from tests.identity.helpers import (
    PASSWORD,
    https_client,
    job_queue,
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
    signed_in = log_in(client, "owner@example.com")
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/app/")
    return client


def invite(client, email="new@example.com", role="user"):
    with mailing():
        return client.post("/app/account/invite/", {"email": email, "role": role})


@pytest.mark.django_db
class TestInvitations:
    def test_owner_invites_by_email_with_a_role(self, owner_client):
        response = invite(owner_client, role="analyst")
        assert response.status_code == 200
        assert "Invitation sent" in response.text
        invitation = Invitation.objects.get()
        assert (invitation.email, invitation.role) == ("new@example.com", "analyst")

    def test_token_is_stored_only_as_a_hash(self, owner_client):
        import hashlib

        invite(owner_client)
        token = last_link("/app/invite/")
        stored = Invitation.objects.get().token_hash
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        assert token not in stored

    def test_accepting_creates_the_member_with_the_role(self, owner_client):
        invite(owner_client, role="viewer")
        client = https_client()
        response = client.post(f"/app/invite/{last_link('/app/invite/')}",
                               {"password": PASSWORD})
        assert (response.status_code, response["Location"]) == (302, "/app/")
        membership = Membership.objects.get(member__email="new@example.com")
        assert (membership.account.name, membership.role) == ("Acme", "viewer")
        assert client.get("/app/").status_code == 200

    def test_accepting_links_an_existing_member_to_a_second_account(self, owner_client):
        make_member("new@example.com", account_name="Other")
        invite(owner_client)
        token = last_link("/app/invite/")
        member_client = https_client()
        log_in(member_client, "new@example.com")
        assert member_client.post(f"/app/invite/{token}").status_code == 302
        names = set(Membership.objects.filter(member__email="new@example.com")
                    .values_list("account__name", flat=True))
        assert names == {"Acme", "Other"}

    def test_invitation_is_single_use(self, owner_client):
        invite(owner_client)
        token = last_link("/app/invite/")
        assert https_client().post(f"/app/invite/{token}",
                                   {"password": PASSWORD}).status_code == 302
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

    def test_legacy_invitation_spelling_finds_the_existing_login(self, owner):
        # An invitation row from before canonical addresses, for a member who exists.
        make_member("new@éxample.com", account_name="Other")
        Invitation.objects.create(account=Account.objects.get(name="Acme"),
                                  email="New@ÉXAMPLE.com", role="user", invited_by=owner,
                                  token_hash=hash_of("legacy-token"),
                                  expires_at=clock.now() + dt.timedelta(days=1))
        response = https_client().post("/app/invite/legacy-token", {"password": PASSWORD})
        assert "You already have an Enclave login" in response.text
        assert Member.objects.count() == 2


class TestInviteForm:
    def test_a_fullwidth_address_is_invited_in_canonical_form(self):
        from enclave.accounts.forms import InviteForm

        form = InviteForm({"email": "ＮＥＷ@example.com", "role": "viewer"})
        assert form.is_valid(), form.errors
        assert form.cleaned_data["email"] == "new@example.com"


def hash_of(token):
    from enclave.accounts.actions import hash_token

    return hash_token(token)


@pytest.mark.django_db
class TestInvitationMail:
    """Invitations go through the mail queue; the worker mints the link."""

    def invite_queued(self, client, folder):
        with job_queue(folder) as queue:
            with TestCase.captureOnCommitCallbacks(execute=True):
                client.post("/app/account/invite/", {"email": "new@example.com",
                                                     "role": "user"})
            return queue, queue.take()

    def test_queued_job_carries_only_the_invitation_id(self, owner_client, tmp_path):
        _, jobs = self.invite_queued(owner_client, tmp_path)
        assert jobs == [("enclave.accounts.send_invitation",
                         {"invitation_id": Invitation.objects.get().pk})]
        assert mail.outbox == []

    def test_worker_mails_a_link_that_accepts_the_invitation(self, owner_client, tmp_path):
        queue, jobs = self.invite_queued(owner_client, tmp_path)
        queue.run(jobs)
        assert mail.outbox[-1].to == ["new@example.com"]
        response = https_client().post(f"/app/invite/{last_link('/app/invite/')}",
                                       {"password": PASSWORD})
        assert response.status_code == 302
        assert Membership.objects.filter(member__email="new@example.com").exists()

    def test_repeated_job_leaves_only_the_last_mailed_link_working(self, owner_client,
                                                                   tmp_path):
        queue, jobs = self.invite_queued(owner_client, tmp_path)
        queue.run(jobs)
        first = last_link("/app/invite/")
        queue.run(jobs)
        assert https_client().get(f"/app/invite/{first}").status_code == 404
        assert https_client().get(f"/app/invite/{last_link('/app/invite/')}"
                                  ).status_code == 200

    def test_job_for_an_accepted_invitation_sends_nothing(self, owner_client, tmp_path):
        queue, jobs = self.invite_queued(owner_client, tmp_path)
        Invitation.objects.update(accepted_at=clock.now())
        queue.run(jobs)
        assert mail.outbox == []


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
        response = owner_client.post("/app/account/security/", {"idle_timeout_minutes": 240})
        assert response.status_code == 200
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
        assert (response.status_code, response["Location"]) == (
            302, "/app/reauth/?next=%2Fapp%2Faccount%2Fsecurity%2F")
        assert Account.objects.get().idle_timeout_minutes == 30

    def test_admin_cannot_change_security_settings(self, owner):
        make_member("admin@example.com", account=Account.objects.get(), role="admin")
        client = https_client()
        log_in(client, "admin@example.com")
        response = client.post("/app/account/security/", {"idle_timeout_minutes": 240})
        assert response.status_code == 403
        assert Account.objects.get().idle_timeout_minutes == 30
