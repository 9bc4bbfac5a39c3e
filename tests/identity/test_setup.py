"""First-owner set-up through the one-time link, as the installer's browser does it."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.test import Client

from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.actions import do_issue_owner_setup_link
from enclave.identity.models import Member

STRONG = "correct horse battery staple 42"
EMAIL = "owner@example.com"


@pytest.fixture
def setup_path() -> str:
    url = do_issue_owner_setup_link()
    assert url is not None
    return urlsplit(url).path


def create_owner(client, setup_path, email=EMAIL, password=STRONG):
    return client.post(setup_path, {"email": email, "password": password})


@pytest.mark.django_db
class TestSetupLink:
    def test_issued_link_is_an_https_url_of_this_deployment(self, settings):
        url = do_issue_owner_setup_link()
        assert url.startswith(f"{settings.CONFIG.public_url}/app/setup/")

    def test_no_link_is_issued_once_an_owner_exists(self, client, setup_path):
        create_owner(client, setup_path)
        assert do_issue_owner_setup_link() is None

    def test_issuing_a_new_link_invalidates_the_previous_one(self, client, setup_path):
        do_issue_owner_setup_link()
        response = client.get(setup_path)
        assert response.status_code == 404
        assert "This set-up link is not valid" in response.text


@pytest.mark.django_db
class TestSetupForm:
    def test_link_shows_the_owner_form(self, client, setup_path):
        response = client.get(setup_path)
        assert response.status_code == 200
        assert "Create the owner account" in response.text
        assert '<label for="id_email">Email</label>' in response.text
        assert '<label for="id_password">Password</label>' in response.text
        assert 'name="csrfmiddlewaretoken"' in response.text

    def test_short_password_is_refused_with_422_and_a_clear_message(self, client, setup_path):
        response = create_owner(client, setup_path, password="short1")
        assert response.status_code == 422
        assert "This password is too short. It must contain at least 12 characters." in (
            response.text)

    def test_short_password_creates_nothing(self, client, setup_path):
        create_owner(client, setup_path, password="short1")
        assert Member.objects.count() == 0

    def test_common_password_is_refused(self, client, setup_path):
        response = create_owner(client, setup_path, password="password1234")
        assert response.status_code == 422
        assert "This password is too common." in response.text
        assert Member.objects.count() == 0

    def test_refused_password_is_not_echoed_back(self, client, setup_path):
        response = create_owner(client, setup_path, password="short-pw-7x")
        assert "short-pw-7x" not in response.text

    def test_refused_form_keeps_the_email_and_marks_the_password_invalid(
        self, client, setup_path,
    ):
        response = create_owner(client, setup_path, password="short1")
        assert f'value="{EMAIL}"' in response.text
        assert 'aria-describedby="password-hint password-errors" aria-invalid="true"' in (
            response.text)

    def test_invalid_email_is_refused_with_422(self, client, setup_path):
        response = create_owner(client, setup_path, email="not-an-email")
        assert response.status_code == 422
        assert "Enter a valid email address." in response.text
        assert Member.objects.count() == 0

    def test_overlong_email_is_refused_cleanly(self, client, setup_path):
        response = create_owner(client, setup_path, email="a" * 300 + "@example.com")
        assert response.status_code == 422
        assert "Ensure this value has at most 254 characters" in response.text
        assert Member.objects.count() == 0

    def test_overlong_password_is_refused_cleanly(self, client, setup_path):
        response = create_owner(client, setup_path, password="p4ssw0rd-" * 200)
        assert response.status_code == 422
        assert "Ensure this value has at most 1024 characters" in response.text
        assert Member.objects.count() == 0

    def test_overlong_token_gets_the_invalid_link_page(self, client):
        response = client.get("/app/setup/" + "x" * 500)
        assert response.status_code == 404
        assert "This set-up link is not valid" in response.text


@pytest.mark.django_db
class TestOwnerCreation:
    def test_valid_form_redirects_to_the_app(self, client, setup_path):
        response = create_owner(client, setup_path)
        assert response.status_code == 302
        assert response["Location"] == "/app/"

    @pytest.mark.real_password_hashing
    def test_valid_form_creates_the_owner_with_an_argon2_hash(self, client, setup_path):
        create_owner(client, setup_path)
        member = Member.objects.get()
        assert member.email == EMAIL
        assert member.password.startswith("argon2$argon2id$")
        assert STRONG not in member.password
        assert member.check_password(STRONG)

    def test_new_owner_is_signed_in(self, client, setup_path):
        create_owner(client, setup_path)
        response = client.get("/app/")
        assert response.status_code == 200
        assert "Welcome to Enclave" in response.text

    def test_owner_creation_is_audited_without_personal_data(self, client, setup_path):
        create_owner(client, setup_path)
        event = AuditEvent.objects.get(event_type=AuditEventType.OWNER_CREATED)
        assert event.target_id == str(Member.objects.get().pk)
        assert EMAIL not in str(event.extra_data)

    def test_used_link_shows_the_invalid_link_page(self, client, setup_path):
        create_owner(client, setup_path)
        response = Client().get(setup_path, secure=True)
        assert response.status_code == 404
        assert "This set-up link is not valid" in response.text

    def test_used_link_cannot_create_a_second_owner(self, client, setup_path):
        create_owner(client, setup_path)
        response = Client().post(setup_path, {"email": "intruder@example.com",
                                              "password": STRONG}, secure=True)
        assert response.status_code == 404
        assert list(Member.objects.values_list("email", flat=True)) == [EMAIL]

    def test_expired_link_shows_the_invalid_link_page(self, client, setup_path):
        with clock.travel(dt.timedelta(hours=25)):
            response = client.get(setup_path)
        assert response.status_code == 404
        assert "This set-up link is not valid" in response.text

    def test_expired_link_cannot_create_an_owner(self, client, setup_path):
        with clock.travel(dt.timedelta(hours=25)):
            response = create_owner(client, setup_path)
        assert response.status_code == 404
        assert Member.objects.count() == 0

    def test_link_still_works_just_before_it_expires(self, client, setup_path):
        with clock.travel(dt.timedelta(hours=23, minutes=59)):
            response = client.get(setup_path)
        assert response.status_code == 200

    def test_post_without_csrf_token_is_refused_and_creates_nothing(self, setup_path):
        browser = Client(enforce_csrf_checks=True)
        response = browser.post(setup_path, {"email": EMAIL, "password": STRONG}, secure=True)
        assert response.status_code == 403
        assert "Form check failed" in response.text
        assert Member.objects.count() == 0

    def test_post_with_the_form_csrf_token_is_accepted(self, setup_path):
        browser = Client(enforce_csrf_checks=True)
        form = browser.get(setup_path, secure=True)
        token = form.context["csrf_token"]
        response = browser.post(
            setup_path, {"email": EMAIL, "password": STRONG, "csrfmiddlewaretoken": str(token)},
            secure=True, HTTP_ORIGIN="https://localhost:8443",
        )
        assert response.status_code == 302
        assert Member.objects.count() == 1
