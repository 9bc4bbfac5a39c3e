"""Sign-up ("check your email") and password reset: no enumeration, single-use tokens."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from enclave.accounts.models import Account, Membership
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import Member, MemberSession, PasswordResetToken, SignupToken
from tests.identity.helpers import (
    NEW_PASSWORD,
    PASSWORD,
    https_client,
    job_queue,
    last_link,
    log_in,
    mailing,
    make_member,
    sql_shape,
    strip_volatile,
)

SEND = "enclave.identity.send_account_mail"


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


# --- the request path does the same work whether or not the address has a login ---

VOLATILE_HEADERS = {"Content-Security-Policy", "X-Trace-Id"}  # per-request nonce, trace id


def request_path(path: str, email: str, folder, **extra):
    """POST ``email`` to ``path``; returns (response, the request's SQL shapes, the jobs it
    queued as the worker will receive them)."""
    with job_queue(folder) as queue:
        # Queries are captured up to the response; the on-commit queueing runs after.
        with (TestCase.captureOnCommitCallbacks(execute=True),
              CaptureQueriesContext(connection) as queries):
            response = https_client().post(path, {"email": email}, **extra)
        jobs = queue.take()
    return response, [sql_shape(q["sql"]) for q in queries], jobs


def comparable(response) -> tuple:
    headers = sorted((k, v) for k, v in response.items() if k not in VOLATILE_HEADERS)
    body = re.sub(r"[0-9a-f]{32}", "<trace>", strip_volatile(response.content.decode()))
    return response.status_code, headers, body


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "kind"), [("/app/password/reset/", "password_reset"),
                                            ("/app/signup/", "signup")])
class TestRequestPath:
    def test_known_and_unknown_address_run_the_same_queries(self, path, kind, tmp_path):
        make_member()
        # The first request of a process also loads and caches its keys; compare two after.
        request_path(path, "warm-up@example.com", tmp_path / "w")
        _, known, _ = request_path(path, "jane@example.com", tmp_path / "a")
        _, unknown, _ = request_path(path, "nobody@example.com", tmp_path / "b")
        assert known == unknown
        assert any("core_auditevent" in q for q in known)

    def test_request_never_looks_the_address_up(self, path, kind, tmp_path):
        make_member()
        _, queries, _ = request_path(path, "jane@example.com", tmp_path)
        assert not [q for q in queries if "identity_member" in q or "token" in q]

    def test_known_and_unknown_address_queue_the_same_job(self, path, kind, tmp_path):
        make_member()
        _, _, known = request_path(path, "jane@example.com", tmp_path / "a")
        _, _, unknown = request_path(path, "nobody@example.com", tmp_path / "b")
        assert known == [(SEND, {"kind": kind, "email": "jane@example.com"})]
        assert unknown == [(SEND, {"kind": kind, "email": "nobody@example.com"})]

    def test_known_and_unknown_address_get_byte_identical_answers(self, path, kind, tmp_path):
        make_member()
        known, _, _ = request_path(path, "jane@example.com", tmp_path / "a")
        unknown, _, _ = request_path(path, "nobody@example.com", tmp_path / "b")
        assert known.status_code == 200
        assert comparable(known) == comparable(unknown)

    def test_no_mail_is_sent_before_the_worker_runs_the_job(self, path, kind, tmp_path):
        make_member()
        request_path(path, "jane@example.com", tmp_path)
        assert mail.outbox == []

    def test_queued_job_carries_the_canonical_address(self, path, kind, tmp_path):
        make_member()
        _, _, jobs = request_path(path, "ＪＡＮＥ@Example.COM", tmp_path)
        assert jobs == [(SEND, {"kind": kind, "email": "jane@example.com"})]


@pytest.mark.django_db
class TestMailJob:
    """What the worker does with a queued sign-up or reset job."""

    def run(self, tmp_path, path, email):
        with job_queue(tmp_path) as queue:
            with TestCase.captureOnCommitCallbacks(execute=True):
                https_client().post(path, {"email": email})
            queue.run(queue.take())

    def test_reset_job_mails_a_working_link_to_a_known_address(self, tmp_path):
        member = make_member()
        self.run(tmp_path, "/app/password/reset/", "jane@example.com")
        assert mail.outbox[-1].to == ["jane@example.com"]
        https_client().post(f"/app/password/reset/{last_link('/app/password/reset/')}",
                            {"new_password": NEW_PASSWORD})
        member.refresh_from_db()
        assert member.check_password(NEW_PASSWORD)

    def test_reset_job_for_an_unknown_address_sends_nothing(self, tmp_path):
        self.run(tmp_path, "/app/password/reset/", "nobody@example.com")
        assert mail.outbox == []
        assert not PasswordResetToken.objects.exists()

    def test_reset_job_for_an_inactive_member_sends_nothing(self, tmp_path):
        member = make_member()
        Member.objects.filter(pk=member.pk).update(is_active=False)
        self.run(tmp_path, "/app/password/reset/", "jane@example.com")
        assert mail.outbox == []

    def test_signup_job_for_a_known_address_sends_a_note_and_no_link(self, tmp_path):
        make_member()
        self.run(tmp_path, "/app/signup/", "jane@example.com")
        assert "already has an Enclave login" in mail.outbox[-1].body
        assert not SignupToken.objects.exists()

    def test_reset_request_is_audited_with_the_client_address_and_no_member(self):
        make_member()
        https_client().post("/app/password/reset/", {"email": "jane@example.com"},
                            REMOTE_ADDR="192.0.2.9")
        event = AuditEvent.objects.get(event_type=AuditEventType.PASSWORD_RESET_REQUESTED)
        assert (event.ip, event.actor_id) == ("192.0.2.9", None)
        assert "jane" not in str(event.extra_data)

    def test_job_logs_neither_the_link_nor_the_body(self, tmp_path, caplog):
        make_member()
        with caplog.at_level("DEBUG"):
            self.run(tmp_path, "/app/password/reset/", "jane@example.com")
        token = last_link("/app/password/reset/")
        assert token not in caplog.text
        assert "Choose a new password" not in caplog.text

    def test_unknown_kind_is_refused(self):
        from enclave.identity.actions import do_send_account_mail

        with pytest.raises(ValueError, match="unknown account mail kind"):
            do_send_account_mail("newsletter", "jane@example.com")
        assert mail.outbox == []


# --- rate limits: per client IP and per address, whether or not it has a login ---

def post_mail_request(path, email, ip="192.0.2.1"):
    with mailing():
        return https_client().post(path, {"email": email}, REMOTE_ADDR=ip)


@pytest.mark.django_db
class TestMailRateLimits:
    def test_sixth_request_for_one_address_within_the_hour_is_refused(self):
        make_member()
        statuses = [post_mail_request("/app/password/reset/", "jane@example.com").status_code
                    for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert len(mail.outbox) == 5

    def test_known_and_unknown_address_get_the_same_refusal(self):
        make_member()
        for _ in range(5):
            post_mail_request("/app/password/reset/", "jane@example.com")
            post_mail_request("/app/password/reset/", "nobody@example.com", ip="192.0.2.2")
        known = post_mail_request("/app/password/reset/", "jane@example.com")
        unknown = post_mail_request("/app/password/reset/", "nobody@example.com",
                                    ip="192.0.2.2")
        assert known.status_code == 429
        assert comparable(known) == comparable(unknown)

    def test_refusal_says_how_long_to_wait(self):
        with clock.frozen(clock.now().replace(minute=30, second=0, microsecond=0)):
            for _ in range(5):
                post_mail_request("/app/signup/", "new@example.com")
            refused = post_mail_request("/app/signup/", "new@example.com")
        assert refused["Retry-After"] == "1800"
        assert "Wait 30 minutes and try again." in refused.text

    def test_flooding_a_victims_inbox_from_many_addresses_is_refused(self):
        make_member()
        statuses = [post_mail_request("/app/password/reset/", "jane@example.com",
                                      ip=f"198.51.100.{i}").status_code for i in range(6)]
        assert statuses[-1] == 429
        assert len(mail.outbox) == 5

    def test_sign_up_and_reset_share_the_per_address_limit(self):
        make_member()
        for _ in range(3):
            post_mail_request("/app/signup/", "jane@example.com")
        for _ in range(2):
            post_mail_request("/app/password/reset/", "jane@example.com")
        assert post_mail_request("/app/password/reset/", "jane@example.com").status_code == 429

    def test_unicode_variants_of_an_address_share_its_counter(self):
        make_member()
        for email in ("JANE@example.com", "Jane@Example.COM", "ｊａｎｅ@example.com",
                      "ＪＡＮＥ@ＥＸＡＭＰＬＥ.ＣＯＭ", "jane@EXAMPLE.com"):
            post_mail_request("/app/password/reset/", email)
        assert post_mail_request("/app/password/reset/",
                                 "jane@example.com").status_code == 429

    def test_one_client_asking_for_many_addresses_is_refused_after_twenty(self):
        statuses = [post_mail_request("/app/signup/", f"n{i}@example.com").status_code
                    for i in range(21)]
        assert statuses == [200] * 20 + [429]
        assert post_mail_request("/app/signup/", "other@example.com",
                                 ip="192.0.2.99").status_code == 200

    def test_refused_request_queues_no_mail_and_writes_no_audit_row(self):
        for _ in range(5):
            post_mail_request("/app/signup/", "new@example.com")
        before = AuditEvent.objects.count()
        post_mail_request("/app/signup/", "new@example.com")
        assert AuditEvent.objects.count() == before
        assert len(mail.outbox) == 5

    def test_limit_resets_in_the_next_hour(self):
        make_member()
        for _ in range(5):
            post_mail_request("/app/password/reset/", "jane@example.com")
        with clock.travel(dt.timedelta(hours=1)):
            response = post_mail_request("/app/password/reset/", "jane@example.com")
        assert response.status_code == 200


# --- the embedded mode for real: web process → filesystem queue → worker → var/mail ---

def live_signup(live, email: str) -> tuple[int, str]:
    import http.cookiejar
    import ssl
    import urllib.parse
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(live.ca_file))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         urllib.request.HTTPCookieProcessor(
                                             http.cookiejar.CookieJar()))
    url = f"{live.https_url}/app/signup/"
    with opener.open(url, timeout=15) as page:
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())[1]
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "email": email}).encode()
    request = urllib.request.Request(url, data=body, headers={  # noqa: S310
        "Origin": live.https_url, "Referer": url})
    with opener.open(request, timeout=15) as response:
        return response.status, response.read().decode()


def mailed_to(live, email: str, timeout: float = 60.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted((live.var_dir / "mail").glob("*")):
            text = path.read_text(errors="replace")
            if f"To: {email}" in text:
                return text
        time.sleep(0.5)
    return ""


@pytest.mark.slow
class TestEmbeddedMail:
    def test_signup_link_is_mailed_by_the_worker_to_var_mail_and_never_logged(
        self, live_enclave,
    ):
        import secrets
        import subprocess
        import sys

        email = f"live-{secrets.token_hex(4)}@example.com"
        status, page = live_signup(live_enclave, email)
        message = mailed_to(live_enclave, email)
        token = re.search(r"/app/signup/(\S+)", message)[1]
        stored = subprocess.run([sys.executable, "-m", "enclave", "logs", "search", "--since",
                                 "1h", "--limit", "100000"], env=live_enclave.env,
                                capture_output=True, text=True, timeout=120, check=True).stdout
        assert (status, "Check your email" in page) == (200, True)
        assert "Task enclave.identity.send_account_mail" in stored  # the worker ran it
        assert token not in stored
        assert token not in live_enclave.log()
