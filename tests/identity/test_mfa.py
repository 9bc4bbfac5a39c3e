"""MFA: TOTP enrolment, encrypted secrets, replay refusal, recovery codes, account
requirement, re-authentication for sensitive actions."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest

from enclave.accounts.models import Account
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import MemberSession, RecoveryCode, TotpDevice
from tests.identity.helpers import (
    PASSWORD,
    enable_mfa,
    https_client,
    log_in,
    make_member,
    totp_now,
    wrong_code,
)

WRONG = "definitely not the password"


@pytest.fixture
def member():
    return make_member()


@pytest.fixture
def signed_in(member):
    client = https_client()
    log_in(client)
    return client


def mfa_login(code, client=None):
    client = client or https_client()
    first = log_in(client)
    return client, first, client.post("/app/login/mfa/", {"code": code})


@pytest.mark.django_db
class TestEnrolment:
    def test_setup_page_shows_an_inline_svg_qr_code_and_the_key(self, signed_in):
        page = signed_in.get("/app/mfa/setup/").text
        assert '<img src="data:image/svg+xml' in page
        assert '<code id="totp-secret">' in page
        assert "<script" not in page
        assert "style=" not in page

    def test_confirming_with_a_current_code_enables_mfa_and_shows_10_codes(self, signed_in,
                                                                           member):
        _, codes = enable_mfa(signed_in)
        assert len(set(codes)) == 10
        assert member.mfa_enabled

    def test_wrong_confirmation_code_leaves_mfa_off(self, signed_in, member):
        signed_in.get("/app/mfa/setup/")
        response = signed_in.post("/app/mfa/setup/", {"code": "123456"})
        assert response.status_code == 422
        assert "That code is not correct" in response.text
        assert not member.mfa_enabled

    def test_secret_is_never_stored_in_plaintext(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        stored = str(TotpDevice.objects.values_list("secret", flat=True).get())
        assert stored.startswith("ek1:fields:")
        assert secret not in stored
        assert TotpDevice.objects.get().secret == secret

    def test_secret_moved_to_another_device_row_does_not_decrypt(self, signed_in):
        from enclave.keys.errors import KeyringError

        enable_mfa(signed_in)
        device = TotpDevice.objects.get()
        stored = str(TotpDevice.objects.values_list("secret", flat=True).get())
        TotpDevice.objects.filter(pk=device.pk).update(row_id=uuid.uuid4())
        moved = TotpDevice.objects.get()
        assert str(TotpDevice.objects.values_list("secret", flat=True).get()) == stored
        with pytest.raises(KeyringError):
            _ = moved.secret

    def test_recovery_codes_are_stored_only_as_hashes(self, signed_in):
        _, codes = enable_mfa(signed_in)
        stored = set(RecoveryCode.objects.values_list("code_hash", flat=True))
        assert len(stored) == 10
        assert not any(c.replace("-", "") in h for c in codes for h in stored)

    def test_enrolment_rotates_the_session_id(self, signed_in):
        before = signed_in.session.session_key
        enable_mfa(signed_in)
        assert signed_in.session.session_key != before


@pytest.mark.django_db
class TestTotpLogin:
    def test_password_alone_does_not_sign_in(self, signed_in):
        enable_mfa(signed_in)
        client = https_client()
        response = log_in(client)
        assert response["Location"] == "/app/login/mfa/"
        assert client.get("/app/").status_code == 302

    def test_current_code_signs_in(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with clock.travel(dt.timedelta(seconds=60)):
            client, _, response = mfa_login(totp_now(secret))
            assert response.status_code == 302
            assert client.get("/app/").status_code == 200

    def test_reused_code_is_refused(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with clock.frozen(clock.now() + dt.timedelta(seconds=60)):
            code = totp_now(secret)
            mfa_login(code)
            client, _, replay = mfa_login(code)
        assert replay.status_code == 422
        assert "not correct or was already used" in replay.text
        assert client.get("/app/").status_code == 302

    def test_code_from_the_enrolment_step_cannot_be_replayed_at_login(self, signed_in):
        with clock.frozen(clock.now()):
            secret, _ = enable_mfa(signed_in)
            _, _, response = mfa_login(totp_now(secret))
        assert response.status_code == 422

    def test_code_from_five_minutes_ago_is_refused(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with clock.travel(dt.timedelta(minutes=5)):
            _, _, response = mfa_login(totp_now(secret, offset_steps=-10))
        assert response.status_code == 422

    def test_recovery_code_signs_in_once(self, signed_in):
        _, codes = enable_mfa(signed_in)
        _, _, first = mfa_login(codes[0])
        _, _, again = mfa_login(codes[0])
        assert first.status_code == 302
        assert again.status_code == 422

    def test_mfa_guessing_is_throttled(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        client = https_client()
        log_in(client)
        for _ in range(5):
            client.post("/app/login/mfa/", {"code": "000000"})
        with clock.travel(dt.timedelta(seconds=30)):
            response = client.post("/app/login/mfa/", {"code": totp_now(secret)})
        assert "Too many attempts" in response.text

    def test_challenge_expires_after_five_minutes(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        client = https_client()
        log_in(client)
        with clock.travel(dt.timedelta(minutes=6)):
            response = client.post("/app/login/mfa/", {"code": totp_now(secret)})
        assert response["Location"] == "/app/login/"


@pytest.mark.django_db
class TestAccountRequiresMfa:
    def test_member_without_mfa_is_sent_to_setup(self, signed_in):
        Account.objects.update(require_mfa=True)
        response = signed_in.get("/app/")
        assert response["Location"] == "/app/mfa/setup/?required=1"

    def test_member_can_use_the_app_once_enrolled(self, signed_in):
        Account.objects.update(require_mfa=True)
        enable_mfa(signed_in)
        assert signed_in.get("/app/").status_code == 200

    def test_mfa_cannot_be_turned_off_while_the_account_requires_it(self, signed_in, member):
        enable_mfa(signed_in)
        Account.objects.update(require_mfa=True)
        response = signed_in.post("/app/mfa/disable/")
        assert response.status_code == 409
        assert member.mfa_enabled


@pytest.mark.django_db
class TestReauthentication:
    def test_mfa_change_after_ten_minutes_asks_to_reauthenticate(self, signed_in, member):
        enable_mfa(signed_in)
        with clock.travel(dt.timedelta(minutes=11)):
            response = signed_in.post("/app/mfa/disable/")
        assert response["Location"] == "/app/reauth/?next=%2Fapp%2Fmfa%2Fdisable%2F"
        assert member.mfa_enabled

    def test_password_and_code_reauthenticate_for_ten_minutes(self, signed_in, member):
        secret, _ = enable_mfa(signed_in)
        with clock.travel(dt.timedelta(minutes=11)):
            signed_in.post("/app/reauth/", {"password": PASSWORD,
                                            "code": totp_now(secret, offset_steps=1)})
            response = signed_in.post("/app/mfa/disable/")
        assert response["Location"] == "/app/mfa/"
        assert not member.mfa_enabled

    def test_password_without_code_does_not_reauthenticate_an_mfa_member(self, signed_in):
        enable_mfa(signed_in)
        with clock.travel(dt.timedelta(minutes=11)):
            response = signed_in.post("/app/reauth/", {"password": PASSWORD})
        assert response.status_code == 422
        row = MemberSession.objects.filter(revoked_at__isnull=True).get()
        assert clock.now() - row.authenticated_at < dt.timedelta(minutes=1)

    def test_wrong_password_does_not_reauthenticate(self, signed_in):
        with clock.travel(dt.timedelta(minutes=11)):
            response = signed_in.post("/app/reauth/", {"password": "wrong wrong wrong"})
            assert response.status_code == 422
            assert signed_in.post("/app/mfa/recovery-codes/").status_code == 302

    def test_regenerated_recovery_codes_replace_the_old_ones(self, signed_in):
        _, old = enable_mfa(signed_in)
        signed_in.post("/app/mfa/recovery-codes/")
        hashes = set(RecoveryCode.objects.values_list("code_hash", flat=True))
        old_hash = hashlib.sha256(f"recovery:{old[0].replace('-', '')}".encode()).hexdigest()
        assert len(hashes) == 10
        assert old_hash not in hashes


def later(seconds: int = 60):
    """A frozen clock past the enrolment step (its code cannot be replayed)."""
    return clock.frozen(clock.now() + dt.timedelta(seconds=seconds))


def authenticated_at():
    return MemberSession.objects.filter(revoked_at__isnull=True).order_by("pk").first(
        ).authenticated_at


@pytest.mark.django_db
class TestSecondFactorThrottling:
    """Wrong codes count per member on their own limit; only a right code clears it."""

    def test_right_password_between_wrong_codes_does_not_reset_the_count(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with later():
            for _ in range(5):
                mfa_login(wrong_code(secret))  # each time after a right password
            client, first, response = mfa_login(totp_now(secret))
        assert first["Location"] == "/app/login/mfa/"
        assert response.status_code == 429
        assert "Too many attempts. Wait 1 minute and try again." in response.text
        assert client.get("/app/").status_code == 302

    def test_blocked_attempt_does_not_look_at_the_code(self, signed_in):
        secret, codes = enable_mfa(signed_in)
        with later():
            for _ in range(5):
                mfa_login(wrong_code(secret))
            _, _, response = mfa_login(codes[0])
        assert response.status_code == 429
        assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()

    def test_wrong_recovery_codes_count_too(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with later():
            for _ in range(5):
                mfa_login("aaaaa-bbbbb")
            _, _, response = mfa_login(totp_now(secret))
        assert response.status_code == 429

    def test_block_expires_with_the_clock(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with later():
            for _ in range(5):
                mfa_login(wrong_code(secret))
            clock.advance(dt.timedelta(minutes=1, seconds=1))
            _, _, response = mfa_login(totp_now(secret))
        assert response.status_code == 302

    def test_right_code_clears_the_count(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with later():
            for _ in range(4):
                mfa_login(wrong_code(secret))
            mfa_login(totp_now(secret))
            clock.advance(dt.timedelta(seconds=30))
            for _ in range(4):
                mfa_login(wrong_code(secret))
            _, _, response = mfa_login(totp_now(secret))
        assert response.status_code == 302

    def test_blocked_attempt_is_audited(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with later():
            for _ in range(6):
                mfa_login(wrong_code(secret))
        event = AuditEvent.objects.get(event_type=AuditEventType.LOGIN_THROTTLED)
        assert (event.target_type, event.extra_data) == ("mfa", {"limits": ["mfa_per_member"]})

    def test_reauth_with_the_right_password_and_wrong_codes_is_blocked(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        before = authenticated_at()
        with later(11 * 60):
            for _ in range(5):
                signed_in.post("/app/reauth/", {"password": PASSWORD,
                                                "code": wrong_code(secret)})
            response = signed_in.post("/app/reauth/", {"password": PASSWORD,
                                                       "code": totp_now(secret)})
        assert response.status_code == 429
        assert authenticated_at() == before

    def test_wrong_codes_at_reauth_and_login_share_one_count(self, signed_in):
        secret, _ = enable_mfa(signed_in)
        with later(11 * 60):
            for _ in range(3):
                signed_in.post("/app/reauth/", {"password": PASSWORD,
                                                "code": wrong_code(secret)})
            for _ in range(2):
                mfa_login(wrong_code(secret))
            _, _, response = mfa_login(totp_now(secret))
        assert response.status_code == 429


@pytest.mark.django_db
class TestReauthThrottling:
    """A stolen session guesses the password no faster than the login page allows."""

    def test_sixth_password_within_the_window_is_refused_even_when_right(self, signed_in):
        before = authenticated_at()
        with later(11 * 60):
            for _ in range(5):
                signed_in.post("/app/reauth/", {"password": WRONG})
            response = signed_in.post("/app/reauth/", {"password": PASSWORD})
        assert response.status_code == 429
        assert "Too many attempts" in response.text
        assert authenticated_at() == before

    def test_reauth_failures_count_against_login(self, signed_in):
        with later(11 * 60):
            for _ in range(5):
                signed_in.post("/app/reauth/", {"password": WRONG})
            response = log_in(https_client(), REMOTE_ADDR="203.0.113.9")
        assert "We could not sign you in" in response.text

    def test_right_password_clears_the_count(self, signed_in):
        with later(11 * 60):
            for _ in range(4):
                signed_in.post("/app/reauth/", {"password": WRONG})
            signed_in.post("/app/reauth/", {"password": PASSWORD})
            for _ in range(4):
                signed_in.post("/app/reauth/", {"password": WRONG})
            response = signed_in.post("/app/reauth/", {"password": PASSWORD})
        assert response.status_code == 302

    def test_blocked_attempt_is_audited_as_throttled(self, signed_in):
        with later(11 * 60):
            for _ in range(6):
                signed_in.post("/app/reauth/", {"password": WRONG})
        event = AuditEvent.objects.get(event_type=AuditEventType.LOGIN_THROTTLED)
        assert (event.target_type, event.extra_data) == ("reauth", {"limits": ["per_member"]})
