"""Plan limits enforced in the actions: adding past a limit is refused with a clear
message (a page) or 403 ``plan-limit-reached`` (the API), and nothing is stored; an
overdue subscription pauses sending after its grace period, and nothing is ever deleted."""

from __future__ import annotations

import pytest

from enclave.accounts.models import Invitation
from enclave.billing import entitlements
from enclave.billing.models import BillingAccount
from enclave.core import clock
from enclave.events.models import Event
from enclave.people.actions import do_create_person
from enclave.people.models import Person
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key

pytestmark = pytest.mark.django_db

# The Free plan (tests/billing/stripe_fixtures.py): 3 people, 6 members, 4 sends a month; the
# world holds 1 person and 5 members.


def _fill_people(world, up_to: int) -> None:
    for n in range(Person.objects.filter(account=world.account).count(), up_to):
        Person.objects.create(account=world.account, email=f"p{n}@example.com")


def _subscribed(world, plan="team", status="active", past_due_since=None) -> BillingAccount:
    return BillingAccount.objects.create(account=world.account, customer_id="cus_test1",
                                         plan_key=plan, status=status,
                                         past_due_since=past_due_since)


class TestPeopleLimit:
    def test_person_past_the_free_plans_limit_is_refused_on_the_page(self, billing, world):
        _fill_people(world, 3)
        response = world.client("owner").post("/app/people/new/", {"email": "four@example.com"})
        assert response.status_code == 422
        assert "The Free plan allows 3 people; this account has 3." in response.text
        assert not Person.objects.filter(email="four@example.com").exists()

    def test_person_past_the_limit_is_a_403_plan_limit_problem_in_the_api(self, billing,
                                                                         world):
        _fill_people(world, 3)
        token, _ = make_key(world.account, world.members["owner"], scopes=["people:write"])
        response = ApiClient(token).post("/api/v1/people", {"email": "four@example.com"})
        assert response.status_code == 403
        body = response.json()
        assert body["type"].endswith("/problems/plan-limit-reached")
        assert "allows 3 people" in body["detail"]
        assert not Person.objects.filter(email="four@example.com").exists()

    def test_archived_people_do_not_count(self, billing, world):
        _fill_people(world, 3)
        Person.objects.filter(account=world.account).update(archived_at=clock.now())
        person = do_create_person(world.account, {"email": "new@example.com"},
                                  actor=world.actor("owner"))
        assert person.pk is not None

    def test_subscribed_plan_raises_the_limit(self, billing, world):
        _fill_people(world, 3)
        _subscribed(world)
        do_create_person(world.account, {"email": "four@example.com"},
                         actor=world.actor("owner"))
        assert entitlements.usage(world.account.pk, entitlements.PEOPLE) == 4

    def test_cancelled_subscription_falls_back_to_the_free_plan_and_keeps_everyone(
            self, billing, world):
        _fill_people(world, 5)
        _subscribed(world, status="canceled")
        with pytest.raises(entitlements.PlanLimitReached):
            do_create_person(world.account, {"email": "six@example.com"},
                             actor=world.actor("owner"))
        assert Person.objects.filter(account=world.account).count() == 5

    def test_import_that_would_pass_the_limit_imports_nobody(self, billing, world):
        client = world.client("owner")
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("people.csv", b"email\na@example.com\nb@example.com\n"
                                                  b"c@example.com\n", "text/csv")
        client.post("/app/people/import/", {"file": upload})
        response = client.post("/app/people/import/confirm/")
        assert "The Free plan allows 3 people; this account has 1 (3 more asked for)." \
            in response.text
        assert Person.objects.filter(account=world.account).count() == 1

    def test_ingest_batch_passing_the_limit_is_refused_for_a_key_that_sees_people(
            self, billing, world):
        token, _ = make_key(world.account, world.members["owner"],
                            scopes=["events:write", "people:read"])
        response = ApiClient(token).post("/api/v1/events", {"batch": [
            {"type": "identify", "email": f"n{i}@example.com"} for i in range(3)]})
        assert response.status_code == 403
        assert response.json()["type"].endswith("/problems/plan-limit-reached")
        assert Person.objects.filter(account=world.account).count() == 1
        assert not Event.objects.exists()

    def test_write_only_key_cannot_tell_held_from_new_people_at_the_limit(self, billing,
                                                                        world):
        _fill_people(world, 3)
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        api = ApiClient(token)
        known = api.post("/api/v1/events", {"type": "identify", "email": world.person.email})
        new = api.post("/api/v1/events", {"type": "identify", "email": "new@example.com"})
        assert (known.status_code, known.json()) == (new.status_code, new.json())
        assert new.json() == {"received": 1, "stored": 1, "duplicates": []}
        assert not Person.objects.filter(email="new@example.com").exists()
        # Nothing is kept about someone who was not created: only the known call.
        assert list(Event.objects.values_list("person_id", flat=True)) == [world.person.pk]

    def test_call_left_out_never_lands_on_the_visitors_linked_person(self, billing, world):
        from tests.events.test_spec import SpecClient

        _fill_people(world, 3)
        token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
        sdk = SpecClient(token)
        assert sdk.post("/api/ingest/v1/identify", {
            "userId": world.person.external_id, "anonymousId": "visitor-a"}).status_code == 200
        response = sdk.post("/api/ingest/v1/identify", {
            "userId": "someone-new", "anonymousId": "visitor-a",
            "traits": {"company": "Leaky Inc"}})
        assert response.status_code == 200
        assert not Person.objects.filter(external_id="someone-new").exists()
        assert Event.objects.filter(account=world.account).count() == 1

    def test_ingest_about_people_already_held_still_fits(self, billing, world):
        _fill_people(world, 3)
        token, _ = make_key(world.account, world.members["owner"],
                            scopes=["events:write", "people:read"])
        response = ApiClient(token).post("/api/v1/events", {
            "type": "identify", "email": world.person.email, "fields": {"company": "New"}})
        assert response.status_code == 202

    def test_billing_off_limits_nothing(self, world):
        _fill_people(world, 12)
        do_create_person(world.account, {"email": "more@example.com"},
                         actor=world.actor("owner"))
        assert Person.objects.filter(account=world.account).count() == 13


class TestSubscribeForm:
    def test_form_at_the_limit_answers_as_usual_and_stores_nobody(self, billing, world):
        from enclave.audience.subscriptions import do_create_topic
        from tests.conftest import HttpsClient

        topic = do_create_topic(world.account, "news", "News", consent_text="News.",
                                actor=world.actor("owner"))
        _fill_people(world, 3)
        url = f"/subscribe/{topic.public_id}"
        known = HttpsClient().post(url, {"email": world.person.email})
        new = HttpsClient().post(url, {"email": "new@example.com"})
        assert (known.status_code, new.status_code) == (200, 200)
        assert _stable(known) == _stable(new)
        assert not Person.objects.filter(email="new@example.com").exists()


def _stable(response) -> str:
    import re

    return re.sub(r'nonce="[^"]+"|<code>[0-9a-f]{32}</code>', "", response.text)


class TestMembersLimit:
    def test_invitation_past_the_members_limit_is_refused(self, billing, world):
        client = world.client("owner")
        assert client.post("/app/account/invite/", {
            "email": "sixth@acme.example", "role": "viewer"}).status_code == 200
        response = client.post("/app/account/invite/", {"email": "seventh@acme.example",
                                                        "role": "viewer"})
        assert response.status_code == 422
        assert "allows 6 team members; this account has 6" in response.text
        assert list(Invitation.objects.values_list("email", flat=True)) == [
            "sixth@acme.example"]

    def test_invitations_sent_before_a_smaller_plan_are_accepted_while_they_fit(
            self, billing, world):
        from enclave.accounts.actions import (
            InvitationError,
            do_accept_invitation,
            do_invite_member,
            do_send_invitation,
        )

        _subscribed(world)  # Team: 8 members
        tokens = [_minted_token(do_invite_member(world.account, f"new{n}@acme.example",
                                                 "viewer", actor=world.actor("owner")),
                                do_send_invitation) for n in range(2)]
        BillingAccount.objects.filter(account=world.account).update(status="canceled")
        # The Free plan: 6 members; 5 are.
        do_accept_invitation(tokens[0], password="a long passphrase for the test 42")
        with pytest.raises(InvitationError, match="cannot take more members"):
            do_accept_invitation(tokens[1], password="a long passphrase for the test 43")
        assert world.account.memberships.count() == 6


def _minted_token(invitation, send) -> str:
    """The token of ``invitation``'s mailed link (the worker mints it when mailing)."""
    import re

    from django.core import mail

    send(invitation.pk)
    return re.search(r"/app/invite/([\w-]+)", mail.outbox[-1].body).group(1)
