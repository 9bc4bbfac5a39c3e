"""Sign-up ("check your email") and password reset: no enumeration, single-use tokens."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from enclave.accounts.models import Account, Membership
from enclave.core import clock
from enclave.identity.models import Member, MemberSession, PasswordResetToken, SignupToken
from tests.identity.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    https_client,
    last_link,
    log_in,
    mailing,
    make_member,
    strip_volatile,
)


def request_signup(email):
    with mailing():
        return https_client().post("/app/signup/", {"email": email})


def request_reset(email):
    with mailing():
        return https_client().post("/app/password/reset/", {"email": email})


@pytest.mark.django_db
class TestSignup:
    def test_unknown_and_known_email_get_identical_pages(self):
        make_member()
        known = request_signup("jane@example.com")
        unknown = request_signup("new@example.com")
        assert known.status_code == unknown.status_code == 200
        assert strip_volatile(known.text) == strip_volatile(unknown.text)

    def test_known_email_gets_a_note_instead_of_a_link(self):
        make_member()
        request_signup("JANE@example.com")
        assert "already has an Enclave login" in mail.outbox[-1].body
        assert not SignupToken.objects.exists()

    def test_link_creates_member_account_and_owner_membership(self):
        request_signup("new@example.com")
        client = https_client()
        response = client.post(f"/app/signup/{last_link('/app/signup/')}",
                               {"account_name": "Newco", "password": PASSWORD})
        assert response.status_code == 302
        membership = Membership.objects.get(member__email="new@example.com")
        assert (membership.account.name, membership.role) == ("Newco", "owner")
        assert "signed in to <strong>Newco</strong> as owner" in client.get("/app/").text

    def test_token_is_stored_only_as_a_hash(self):
        request_signup("new@example.com")
        token = last_link("/app/signup/")
        assert not SignupToken.objects.filter(token_hash=token).exists()

    def test_used_link_cannot_be_replayed(self):
        request_signup("new@example.com")
        token = last_link("/app/signup/")
        https_client().post(f"/app/signup/{token}", {"account_name": "Newco",
                                                     "password": PASSWORD})
        again = https_client().post(f"/app/signup/{token}", {"account_name": "Other",
                                                             "password": PASSWORD})
        assert again.status_code == 404
        assert "This sign-up link is not valid" in again.text
        assert Account.objects.count() == 1

    def test_expired_link_is_refused(self):
        request_signup("new@example.com")
        token = last_link("/app/signup/")
        with clock.travel(dt.timedelta(hours=25)):
            response = https_client().post(f"/app/signup/{token}",
                                           {"account_name": "Newco", "password": PASSWORD})
        assert response.status_code == 404
        assert not Member.objects.exists()

    def test_password_built_from_account_name_is_refused_and_nothing_is_created(self):
        request_signup("new@example.com")
        response = https_client().post(f"/app/signup/{last_link('/app/signup/')}",
                                       {"account_name": "Globex Industries",
                                        "password": "Globex Industries 2024"})
        assert response.status_code == 422
        assert "built from your email address or account name" in response.text
        assert not Member.objects.exists()
        assert not Account.objects.exists()

    def test_malformed_token_gets_the_invalid_link_page(self):
        response = https_client().get("/app/signup/" + "%00" * 10 + "x" * 300)
        assert response.status_code == 404

    def test_overlong_email_gets_a_clear_error(self):
        response = request_signup("a" * 300 + "@example.com")
        assert response.status_code == 422
        assert "Ensure this value has at most 254 characters" in response.text
        assert not SignupToken.objects.exists()


@pytest.mark.django_db
class TestPasswordReset:
    def test_unknown_and_known_email_get_identical_pages(self):
        make_member()
        known = request_reset("jane@example.com")
        unknown = request_reset("nobody@example.com")
        assert known.status_code == unknown.status_code == 200
        assert strip_volatile(known.text) == strip_volatile(unknown.text)

    def test_unknown_email_sends_nothing(self):
        request_reset("nobody@example.com")
        assert mail.outbox == []

    def test_reset_sets_the_new_password_and_ends_every_session(self):
        member = make_member()
        browser = https_client()
        log_in(browser)
        request_reset("jane@example.com")
        response = https_client().post(f"/app/password/reset/{last_link('/app/password/reset/')}",
                                       {"new_password": NEW_PASSWORD})
        assert "Your password was changed" in response.text
        member.refresh_from_db()
        assert member.check_password(NEW_PASSWORD)
        assert browser.get("/app/").status_code == 302
        assert not MemberSession.objects.filter(revoked_at__isnull=True).exists()

    def test_reset_token_is_single_use(self):
        member = make_member()
        request_reset("jane@example.com")
        token = last_link("/app/password/reset/")
        https_client().post(f"/app/password/reset/{token}", {"new_password": NEW_PASSWORD})
        again = https_client().post(f"/app/password/reset/{token}",
                                    {"new_password": "yet another long passphrase"})
        assert again.status_code == 404
        member.refresh_from_db()
        assert member.check_password(NEW_PASSWORD)

    def test_reset_token_expires_after_one_hour(self):
        member = make_member()
        request_reset("jane@example.com")
        token = last_link("/app/password/reset/")
        with clock.travel(dt.timedelta(minutes=61)):
            response = https_client().post(f"/app/password/reset/{token}",
                                           {"new_password": NEW_PASSWORD})
        assert response.status_code == 404
        member.refresh_from_db()
        assert member.check_password(PASSWORD)

    def test_reset_token_is_stored_only_as_a_hash(self):
        make_member()
        request_reset("jane@example.com")
        assert not PasswordResetToken.objects.filter(
            token_hash=last_link("/app/password/reset/")).exists()

    def test_malformed_token_gets_the_invalid_link_page(self):
        response = https_client().get("/app/password/reset/not-a-token")
        assert response.status_code == 404
        assert "This password reset link is not valid" in response.text
