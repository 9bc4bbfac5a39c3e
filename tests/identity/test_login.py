"""Log in: no enumeration, comparable timing, throttling with expiring back-off, audit."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
from django.test import Client

from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import Member, MemberSession
from tests.identity.helpers import PASSWORD, https_client, log_in, make_member, strip_volatile

WRONG = "definitely not the password"


@pytest.fixture
def member():
    return make_member()


@pytest.mark.django_db
class TestLoginSuccess:
    def test_right_password_signs_in_and_redirects_to_the_app(self, member):
        client = https_client()
        response = log_in(client)
        assert response.status_code == 302
        assert response["Location"] == "/app/"
        assert "Welcome to Enclave" in client.get("/app/").text

    def test_email_is_matched_case_insensitively(self, member):
        assert log_in(https_client(), "JANE@Example.COM").status_code == 302

    def test_session_id_changes_at_login(self, member):
        client = https_client()
        client.get("/app/login/")
        client.session.save()
        before = client.session.session_key
        log_in(client)
        assert client.session.session_key != before

    def test_login_is_audited_without_the_password(self, member):
        log_in(https_client())
        event = AuditEvent.objects.get(event_type=AuditEventType.LOGIN_SUCCEEDED)
        assert event.actor_id == member.pk
        assert PASSWORD not in str(event.extra_data)

    def test_safe_next_is_followed(self, member):
        response = https_client().post("/app/login/", {
            "email": "jane@example.com", "password": PASSWORD, "next": "/app/sessions/"})
        assert response["Location"] == "/app/sessions/"

    def test_offsite_next_is_ignored(self, member):
        response = https_client().post("/app/login/", {
            "email": "jane@example.com", "password": PASSWORD, "next": "https://evil.example/"})
        assert response["Location"] == "/app/"

    def test_inactive_member_cannot_sign_in(self, member):
        Member.objects.filter(pk=member.pk).update(is_active=False)
        response = log_in(https_client())
        assert response.status_code == 200
        assert "We could not sign you in" in response.text


@pytest.mark.django_db
class TestNoEnumeration:
    def test_unknown_email_and_wrong_password_get_identical_pages(self, member):
        unknown = log_in(https_client(), "nobody@example.com", WRONG)
        wrong = log_in(https_client(), "jane@example.com", WRONG)
        assert unknown.status_code == wrong.status_code == 200
        assert strip_volatile(unknown.text) == strip_volatile(wrong.text)

    def test_throttled_member_gets_the_same_page_as_a_wrong_password(self, member):
        for _ in range(5):
            log_in(https_client(), password=WRONG)
        throttled = log_in(https_client(), password=PASSWORD)
        unknown = log_in(https_client(), "nobody@example.com", WRONG)
        assert throttled.status_code == unknown.status_code == 200
        assert strip_volatile(throttled.text) == strip_volatile(unknown.text)

    def test_inactive_member_gets_the_same_page_as_an_unknown_email(self, member):
        Member.objects.filter(pk=member.pk).update(is_active=False)
        inactive = log_in(https_client())
        unknown = log_in(https_client(), "nobody@example.com", WRONG)
        assert strip_volatile(inactive.text) == strip_volatile(unknown.text)

    @pytest.mark.real_password_hashing
    def test_unknown_email_takes_comparable_time_to_a_wrong_password(self, member):
        def timed(email):
            client = https_client()
            start = time.perf_counter()
            log_in(client, email, WRONG)
            return time.perf_counter() - start

        unknown = statistics.median(timed(f"n{i}@example.com") for i in range(4))
        known = statistics.median(timed("jane@example.com") for _ in range(4))
        assert 0.5 < unknown / known < 2.0

    def test_failures_are_audited_without_the_password(self, member):
        log_in(https_client(), password=WRONG)
        log_in(https_client(), "nobody@example.com", WRONG)
        events = AuditEvent.objects.filter(event_type=AuditEventType.LOGIN_FAILED)
        assert sorted(e.extra_data["reason"] for e in events) == ["bad_password", "unknown_email"]
        assert all(WRONG not in str(e.extra_data) for e in events)


@pytest.mark.django_db
class TestThrottling:
    def test_sixth_attempt_within_the_window_is_refused_even_with_the_right_password(
        self, member,
    ):
        for _ in range(5):
            log_in(https_client(), password=WRONG)
        log_in(https_client(), password=PASSWORD)
        assert not MemberSession.objects.exists()
        assert AuditEvent.objects.filter(event_type=AuditEventType.LOGIN_THROTTLED).exists()

    def test_back_off_expires_with_the_clock(self, member):
        for _ in range(5):
            log_in(https_client(), password=WRONG)
        with clock.travel(dt.timedelta(minutes=1, seconds=1)):
            response = log_in(https_client())
        assert response.status_code == 302

    def test_back_off_grows_exponentially(self, member):
        with clock.frozen(clock.now()):
            for _ in range(5):
                log_in(https_client(), password=WRONG)
            clock.advance(dt.timedelta(minutes=1, seconds=1))
            log_in(https_client(), password=WRONG)  # 6th failure: 2 minutes
            clock.advance(dt.timedelta(minutes=1, seconds=30))
            refused = log_in(https_client())
            clock.advance(dt.timedelta(seconds=31))
            allowed = log_in(https_client())
        assert refused.status_code == 200
        assert allowed.status_code == 302

    def test_back_off_never_exceeds_the_window(self, member):
        with clock.frozen(clock.now()):
            for _ in range(12):
                log_in(https_client(), password=WRONG)
                clock.advance(dt.timedelta(minutes=16))
            response = log_in(https_client())
        assert response.status_code == 302

    def test_other_members_are_not_throttled_by_one_members_failures(self, member):
        make_member("bob@example.com")
        for _ in range(5):
            log_in(https_client(), password=WRONG)
        assert log_in(https_client(), "bob@example.com").status_code == 302

    def test_per_ip_limit_blocks_many_emails_from_one_address(self, member, settings):
        settings.LOGIN_LIMITS = {"per_member": "5/15m", "per_ip": "3/15m"}
        for i in range(3):
            log_in(https_client(), f"guess{i}@example.com", WRONG)
        assert log_in(https_client()).status_code == 200
        other_ip = log_in(https_client(), REMOTE_ADDR="192.0.2.7")
        assert other_ip.status_code == 302

    def test_one_member_attacked_from_many_addresses_is_throttled(self, member):
        for i in range(5):
            log_in(https_client(), password=WRONG, REMOTE_ADDR=f"198.51.100.{i}")
        response = log_in(https_client(), REMOTE_ADDR="203.0.113.50")
        assert response.status_code == 200
        assert not MemberSession.objects.exists()

    def test_spraying_one_password_across_members_from_one_address_is_throttled(
        self, member, settings,
    ):
        settings.LOGIN_LIMITS = {**settings.LOGIN_LIMITS, "per_ip": "3/15m"}
        for name in ("ann", "bob", "cat"):
            make_member(f"{name}@example.com", account_name=name)
            log_in(https_client(), f"{name}@example.com", WRONG)
        assert log_in(https_client()).status_code == 200
        assert not MemberSession.objects.exists()

    def test_a_correct_password_does_not_clear_the_ip_counter(self, member, settings):
        settings.LOGIN_LIMITS = {**settings.LOGIN_LIMITS, "per_ip": "3/15m"}
        make_member("bob@example.com", account_name="Bob's")
        log_in(https_client(), "bob@example.com", WRONG)
        log_in(https_client(), "bob@example.com", WRONG)
        log_in(https_client())  # the sprayer's own, correct login
        log_in(https_client(), "bob@example.com", WRONG)
        assert log_in(https_client(), "bob@example.com").status_code == 200
        assert MemberSession.objects.count() == 1

    def test_success_resets_the_member_counter(self, member):
        for _ in range(4):
            log_in(https_client(), password=WRONG)
        log_in(https_client())
        for _ in range(4):
            log_in(https_client(), password=WRONG)
        assert log_in(https_client()).status_code == 302


@pytest.mark.django_db
class TestBadInput:
    def test_overlong_email_gets_a_clear_error(self, member):
        response = log_in(https_client(), "a" * 300 + "@example.com")
        assert response.status_code == 422
        assert "Ensure this value has at most 254 characters" in response.text

    def test_overlong_password_gets_a_clear_error_and_no_session(self, member):
        response = log_in(https_client(), password="x" * 2000)
        assert response.status_code == 422
        assert "Ensure this value has at most 1024 characters" in response.text
        assert not MemberSession.objects.exists()

    def test_post_without_csrf_token_is_refused(self, member):
        response = Client(enforce_csrf_checks=True).post(
            "/app/login/", {"email": "jane@example.com", "password": PASSWORD}, secure=True)
        assert response.status_code == 403
        assert not MemberSession.objects.exists()

    def test_login_page_has_labelled_fields_and_a_csrf_token(self):
        response = https_client().get("/app/login/")
        assert '<label for="id_email">Email</label>' in response.text
        assert '<label for="id_password">Password</label>' in response.text
        assert 'name="csrfmiddlewaretoken"' in response.text

    def test_logout_requires_post(self, member):
        client = https_client()
        log_in(client)
        assert client.get("/app/logout/").status_code == 405
        client.post("/app/logout/")
        assert client.get("/app/").status_code == 302


@pytest.mark.django_db
class TestUnicodeAddresses:
    """One canonical form (NFKC + case folding) for lookups and throttle keys, the same on
    SQLite and PostgreSQL."""

    @pytest.mark.parametrize("typed", ["JANE@EXAMPLE.COM", "ｊａｎｅ@example.com",
                                       "Ｊａｎｅ@ＥＸＡＭＰＬＥ.com", " jane@example.com "])
    def test_case_and_width_variants_sign_in_as_the_member(self, member, typed):
        assert log_in(https_client(), typed).status_code == 302

    def test_sharp_s_signs_in_as_its_folded_spelling(self):
        make_member("strasse@example.com")
        assert log_in(https_client(), "STRAßE@example.com").status_code == 302

    def test_dotted_capital_i_is_not_another_spelling_of_i(self):
        # "İ" folds to "i" + a combining dot: not an address Enclave accepts.
        make_member("alice@example.com")
        response = log_in(https_client(), "ALİCE@example.com")
        assert response.status_code == 422
        assert not MemberSession.objects.exists()

    def test_dotless_i_is_not_another_spelling_of_i(self):
        # "alıce" is a valid, different address: an ordinary failed login.
        make_member("alice@example.com")
        response = log_in(https_client(), "alıce@example.com")
        assert "We could not sign you in" in response.text
        assert not MemberSession.objects.exists()

    def test_variants_cannot_dodge_the_member_counter(self, member):
        for typed in ("JANE@EXAMPLE.COM", "ｊａｎｅ@example.com", "Jane@Example.com",
                      "ＪＡＮＥ@ＥＸＡＭＰＬＥ.ＣＯＭ", "jane@EXAMPLE.com"):
            log_in(https_client(), typed, WRONG, REMOTE_ADDR="198.51.100.7")
        response = log_in(https_client(), REMOTE_ADDR="203.0.113.8")
        assert response.status_code == 200
        assert not MemberSession.objects.exists()

    def test_sharp_s_spellings_share_one_counter(self):
        make_member("strasse@example.com")
        for typed in ("straße@example.com", "STRASSE@example.com", "Straße@Example.com",
                      "strasse@example.com", "STRAẞE@example.com"):
            log_in(https_client(), typed, WRONG)
        assert log_in(https_client(), "strasse@example.com").status_code == 200


@pytest.mark.django_db
class TestMemberLookup:
    """``Member.objects.with_email`` answers the same on both databases."""

    @pytest.mark.parametrize(("typed", "found"), [
        ("jane@example.com", True),
        ("JANE@EXAMPLE.COM", True),
        ("ｊａｎｅ@ｅｘａｍｐｌｅ.ｃｏｍ", True),
        ("jane@éxample.com", False),
        ("jаne@example.com", False),  # Cyrillic а
        ("jıne@example.com", False),
    ])
    def test_lookup_by_address(self, typed, found):
        make_member("jane@example.com")
        assert Member.objects.with_email(typed).exists() is found

    def test_dotless_i_is_not_matched_as_i(self):
        # PostgreSQL's UPPER() turns "ı" into "I", so a case-insensitive match found
        # alice here on PostgreSQL only.
        make_member("alice@example.com")
        assert not Member.objects.with_email("alıce@example.com").exists()

    def test_non_ascii_domain_case_variants_match(self):
        make_member("jane@ÉXAMPLE.com")
        assert Member.objects.with_email("JANE@éxample.COM").get().email == "jane@éxample.com"

    def test_member_is_stored_in_canonical_form(self):
        member = make_member("Jane.Doe@EXAMPLE.com")
        member.refresh_from_db()
        assert member.email == "jane.doe@example.com"
