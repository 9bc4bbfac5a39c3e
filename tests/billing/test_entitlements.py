"""Plan limits enforced in the actions: adding past a limit is refused with a clear
message (a page) or 403 ``plan-limit-reached`` (the API), and nothing is stored; an
overdue subscription pauses sending after its grace period, and nothing is ever deleted."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.accounts.models import Invitation
from enclave.billing import entitlements
from enclave.billing.actions import do_pause_overdue_sending
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
        assert new.status_code == 202
        assert not Person.objects.filter(email="new@example.com").exists()
        # The call is kept, about nobody.
        assert Event.objects.filter(person__isnull=True).count() == 1

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

    def test_invitation_sent_before_a_smaller_plan_cannot_be_accepted(self, billing, world):
        from enclave.accounts.actions import (
            InvitationError,
            do_accept_invitation,
            do_invite_member,
            do_send_invitation,
        )

        _subscribed(world)  # Team: 8 members
        invitation = do_invite_member(world.account, "sixth@acme.example", "viewer",
                                      actor=world.actor("owner"))
        do_invite_member(world.account, "seventh@acme.example", "viewer",
                         actor=world.actor("owner"))
        token = _minted_token(invitation, do_send_invitation)
        BillingAccount.objects.filter(account=world.account).update(status="canceled")
        with pytest.raises(InvitationError, match="cannot take more members"):
            do_accept_invitation(token, password="a long passphrase for the test 42")
        assert world.account.memberships.count() == 5


class TestSendingPause:
    def test_past_due_within_the_grace_period_still_sends(self, billing, world):
        _subscribed(world, status="past_due", past_due_since=clock.now())
        assert not entitlements.standing(world.account.pk).sending_paused
        entitlements.check_sending(world.account.pk)

    def test_past_due_beyond_the_grace_period_pauses_sending(self, billing, world):
        _subscribed(world, status="past_due",
                    past_due_since=clock.now() - dt.timedelta(days=7, seconds=1))
        with pytest.raises(entitlements.SendingPaused, match="Sending is paused"):
            entitlements.check_sending(world.account.pk)

    def test_overdue_account_keeps_its_plans_limits_and_its_people(self, billing, world):
        _fill_people(world, 5)
        _subscribed(world, status="unpaid",
                    past_due_since=clock.now() - dt.timedelta(days=30))
        held = entitlements.standing(world.account.pk)
        assert (held.plan.key, held.sending_paused) == ("team", True)
        assert Person.objects.filter(account=world.account).count() == 5


class TestBroadcasts:
    @pytest.fixture
    def setup(self, billing, world, local_dns):
        from tests.messaging.test_broadcasts import Setup

        setup = Setup(world, local_dns)
        # Free plan: 3 people, 4 sends a month; the subscribed plan (team): 50 sends.
        _subscribed(world)
        return setup

    def test_broadcast_past_the_monthly_sends_is_refused_and_nothing_is_queued(
            self, setup, world):
        from enclave.messaging.models import DRAFT, OutboxMessage

        BillingAccount.objects.filter(account=world.account).update(status="canceled")
        for n in range(2):
            setup.person(f"s{n}@example.com")
        first = setup.queue(setup.broadcast(name="First"))  # 2 of 4
        setup.person("s2@example.com")
        second = setup.broadcast(name="Second")  # 3 more: 5 of 4
        with pytest.raises(entitlements.PlanLimitReached, match="allows 4 emails a month"):
            setup.queue(second)
        second.refresh_from_db()
        assert second.state == DRAFT
        assert OutboxMessage.objects.filter(broadcast=second).count() == 0
        assert first.recipients == 2

    def test_scheduled_broadcast_past_the_monthly_sends_goes_back_to_a_draft(self, setup,
                                                                           world):
        from enclave.core.models import AuditEvent, AuditEventType
        from enclave.messaging.actions import do_schedule_broadcast, start_due_broadcasts
        from enclave.messaging.models import DRAFT

        BillingAccount.objects.filter(account=world.account).update(status="canceled")
        for n in range(5):
            setup.person(f"s{n}@example.com")  # 5 recipients; the Free plan sends 4
        broadcast = do_schedule_broadcast(setup.broadcast(),
                                          clock.now() + dt.timedelta(hours=1),
                                          actor=world.actor("owner"))
        with clock.travel(dt.timedelta(hours=2)):
            assert start_due_broadcasts() == 0
        broadcast.refresh_from_db()
        assert broadcast.state == DRAFT
        assert "allows 4 emails a month" in broadcast.problem
        assert AuditEvent.objects.get(event_type=AuditEventType.BROADCAST_NOT_STARTED
                                      ).extra_data == {"fields": ["plan"]}

    def test_monthly_usage_counts_this_months_recipients(self, setup, world):
        for n in range(2):
            setup.person(f"s{n}@example.com")
        setup.queue(setup.broadcast())
        assert entitlements.usage(world.account.pk, entitlements.MONTHLY_SENDS) == 2
        with clock.travel(dt.timedelta(days=32)):
            assert entitlements.usage(world.account.pk, entitlements.MONTHLY_SENDS) == 0

    def test_broadcast_is_not_started_while_sending_is_paused(self, setup, world):
        from enclave.messaging.models import DRAFT

        BillingAccount.objects.filter(account=world.account).update(
            status="past_due", past_due_since=clock.now() - dt.timedelta(days=9))
        setup.person("s@example.com")
        broadcast = setup.broadcast()
        with pytest.raises(entitlements.SendingPaused):
            setup.queue(broadcast)
        broadcast.refresh_from_db()
        assert broadcast.state == DRAFT

    def test_housekeeping_holds_queued_broadcasts_once_grace_ends(self, setup, world):
        from enclave.messaging.actions import do_resume_broadcast
        from enclave.messaging.models import PAUSED, QUEUED

        setup.person("s@example.com")
        broadcast = setup.queue(setup.broadcast())
        assert broadcast.state == QUEUED
        BillingAccount.objects.filter(account=world.account).update(
            status="past_due", past_due_since=clock.now())
        assert do_pause_overdue_sending() == 0
        with clock.travel(dt.timedelta(days=8)):
            assert do_pause_overdue_sending() == 1
            broadcast.refresh_from_db()
            assert broadcast.state == PAUSED
            with pytest.raises(entitlements.SendingPaused):
                do_resume_broadcast(broadcast, actor=world.actor("owner"))


def _minted_token(invitation, send) -> str:
    """The token of ``invitation``'s mailed link (the worker mints it when mailing)."""
    import re

    from django.core import mail

    send(invitation.pk)
    return re.search(r"/app/invite/([\w-]+)", mail.outbox[-1].body).group(1)
