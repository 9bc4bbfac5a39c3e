"""Sessions: idle and absolute expiry, revocation, last-seen, sessions page, API 401."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.accounts.models import Account
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import MemberSession
from tests.identity.helpers import NEW_PASSWORD, PASSWORD, https_client, log_in, make_member


@pytest.fixture
def member():
    return make_member()


@pytest.fixture
def signed_in(member):
    client = https_client()
    log_in(client, HTTP_USER_AGENT="Firefox on Linux")
    return client


def minutes(n):
    return dt.timedelta(minutes=n)


@pytest.mark.django_db
class TestSessionRecord:
    def test_login_records_device_ip_and_expiry(self, signed_in):
        row = MemberSession.objects.get()
        assert row.user_agent == "Firefox on Linux"
        assert row.ip == "127.0.0.1"
        assert row.absolute_expires_at - row.created_at == dt.timedelta(hours=12)

    def test_session_key_is_stored_only_as_a_hash(self, signed_in):
        key = signed_in.session.session_key
        assert not MemberSession.objects.filter(key_hash=key).exists()
        assert MemberSession.objects.get().key_hash != key


@pytest.mark.django_db
class TestIdleTimeout:
    def test_session_survives_29_idle_minutes(self, signed_in):
        with clock.travel(minutes(29)):
            assert signed_in.get("/app/").status_code == 200

    def test_session_ends_after_31_idle_minutes(self, signed_in):
        with clock.travel(minutes(31)):
            response = signed_in.get("/app/")
        assert response.status_code == 302
        assert response["Location"].startswith("/app/login/?ended=1")

    def test_activity_keeps_the_session_alive(self, signed_in):
        for step in (20, 40, 60):
            with clock.travel(minutes(step)):
                assert signed_in.get("/app/").status_code == 200

    def test_account_owner_setting_shortens_the_idle_timeout(self, signed_in):
        Account.objects.update(idle_timeout_minutes=5)
        with clock.travel(minutes(6)):
            assert signed_in.get("/app/").status_code == 302

    def test_account_owner_setting_lengthens_the_idle_timeout(self, signed_in):
        Account.objects.update(idle_timeout_minutes=120)
        with clock.travel(minutes(90)):
            assert signed_in.get("/app/").status_code == 200

    def test_ended_session_cannot_be_reused_after_the_clock_returns(self, signed_in):
        with clock.travel(minutes(31)):
            signed_in.get("/app/")
        assert signed_in.get("/app/").status_code == 302


@pytest.mark.django_db
class TestAbsoluteTimeout:
    def test_active_session_ends_after_12_hours(self, signed_in):
        for step in range(1, 29):  # a request every 25 minutes for 11 h 40 min
            with clock.travel(minutes(25 * step)):
                assert signed_in.get("/app/").status_code == 200
        with clock.travel(dt.timedelta(hours=12, minutes=1)):
            assert signed_in.get("/app/").status_code == 302

    def test_expired_session_on_the_api_gets_401_problem_json(self, signed_in):
        with clock.travel(dt.timedelta(hours=13)):
            response = signed_in.get("/api/v1/health")
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("/problems/unauthenticated")


@pytest.mark.django_db
class TestLastSeen:
    def test_last_seen_is_not_written_on_every_request(self, signed_in):
        first = MemberSession.objects.get().last_seen_at
        with clock.travel(dt.timedelta(seconds=30)):
            signed_in.get("/app/")
        assert MemberSession.objects.get().last_seen_at == first

    def test_last_seen_is_written_after_a_minute(self, signed_in):
        first = MemberSession.objects.get().last_seen_at
        with clock.travel(dt.timedelta(seconds=61)):
            signed_in.get("/app/")
        assert MemberSession.objects.get().last_seen_at > first


@pytest.mark.django_db
class TestRevocation:
    def test_sessions_page_lists_each_session_with_device_and_ip(self, signed_in):
        log_in(https_client(), HTTP_USER_AGENT="Safari on iPhone", REMOTE_ADDR="198.51.100.4")
        page = signed_in.get("/app/sessions/").text
        assert "Firefox on Linux (this browser)" in page.replace("</th>", "").replace(
            " <strong>", " ").replace("</strong>", "")
        assert "Safari on iPhone" in page
        assert "198.51.100.4" in page

    def test_revoked_session_ends_on_its_next_request(self, signed_in):
        other = https_client()
        log_in(other)
        other_row = MemberSession.objects.order_by("-pk").first()
        signed_in.post(f"/app/sessions/{other_row.pk}/revoke/")
        assert other.get("/app/").status_code == 302
        assert signed_in.get("/app/").status_code == 200

    def test_revoking_another_members_session_is_refused(self, signed_in):
        make_member("bob@example.com")
        bob = https_client()
        log_in(bob, "bob@example.com")
        bob_row = MemberSession.objects.get(member__email="bob@example.com")
        response = signed_in.post(f"/app/sessions/{bob_row.pk}/revoke/")
        assert response.status_code == 404
        assert bob.get("/app/").status_code == 200

    def test_sign_out_everywhere_ends_every_session(self, signed_in):
        other = https_client()
        log_in(other)
        signed_in.post("/app/sessions/revoke-all/")
        assert other.get("/app/").status_code == 302
        assert signed_in.get("/app/").status_code == 302
        assert AuditEvent.objects.filter(event_type=AuditEventType.SESSIONS_REVOKED_ALL).exists()

    def test_revoke_without_csrf_token_is_refused(self, member):
        from django.test import Client

        browser = Client(enforce_csrf_checks=True)
        browser.force_login(member)
        row = MemberSession.objects.get()
        response = browser.post(f"/app/sessions/{row.pk}/revoke/", secure=True)
        assert response.status_code == 403
        assert MemberSession.objects.get().revoked_at is None

    def test_logout_ends_the_session_row(self, signed_in):
        signed_in.post("/app/logout/")
        assert MemberSession.objects.get().revoked_at is not None


@pytest.mark.django_db
class TestPasswordChange:
    def test_password_change_ends_all_other_sessions(self, signed_in):
        other = https_client()
        log_in(other)
        response = signed_in.post("/app/password/", {
            "current_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert "Your password was changed" in response.text
        assert other.get("/app/").status_code == 302
        assert signed_in.get("/app/").status_code == 200

    def test_password_change_rotates_the_session_id(self, signed_in):
        before = signed_in.session.session_key
        signed_in.post("/app/password/", {"current_password": PASSWORD,
                                          "new_password": NEW_PASSWORD})
        assert signed_in.session.session_key != before

    def test_wrong_current_password_changes_nothing(self, signed_in, member):
        response = signed_in.post("/app/password/", {
            "current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD})
        assert response.status_code == 422
        assert "Your current password is not correct." in response.text
        member.refresh_from_db()
        assert member.check_password(PASSWORD)

    def test_current_password_guessing_is_throttled(self, signed_in, member):
        for _ in range(5):
            signed_in.post("/app/password/", {"current_password": "wrong wrong wrong",
                                              "new_password": NEW_PASSWORD})
        response = signed_in.post("/app/password/", {"current_password": PASSWORD,
                                                     "new_password": NEW_PASSWORD})
        assert response.status_code == 429
        assert "Too many attempts. Wait 1 minute and try again." in response.text
        member.refresh_from_db()
        assert member.check_password(PASSWORD)

    def test_wrong_current_passwords_count_against_login(self, signed_in):
        for _ in range(5):
            signed_in.post("/app/password/", {"current_password": "wrong wrong wrong",
                                              "new_password": NEW_PASSWORD})
        response = log_in(https_client(), REMOTE_ADDR="203.0.113.9")
        assert "We could not sign you in" in response.text

    def test_wrong_current_password_is_audited(self, signed_in):
        signed_in.post("/app/password/", {"current_password": "wrong wrong wrong",
                                          "new_password": NEW_PASSWORD})
        event = AuditEvent.objects.get(event_type=AuditEventType.LOGIN_FAILED)
        assert (event.target_type, event.extra_data) == ("password_change",
                                                         {"reason": "bad_password"})

    def test_weak_new_password_is_refused(self, signed_in, member):
        response = signed_in.post("/app/password/", {
            "current_password": PASSWORD, "new_password": "short"})
        assert response.status_code == 422
        assert "too short" in response.text
        member.refresh_from_db()
        assert member.check_password(PASSWORD)
