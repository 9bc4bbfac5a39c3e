"""Topics, subscriptions and consent, double opt-in, suppression: the actions and the
answers the send pipeline will rely on."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from enclave.access.principal import NotAuthorized
from enclave.audience import subscriptions as subs
from enclave.audience import tokens
from enclave.audience.models import (
    PENDING,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ConsentRecord,
    Subscription,
    Suppression,
)
from enclave.core import clock
from enclave.people.actions import do_erase_person
from tests.identity.helpers import last_link, mailing


def topic(world, *, double_opt_in=True, key="news"):
    return subs.do_create_topic(world.account, key, "News", consent_text="Monthly news.",
                                double_opt_in=double_opt_in, actor=world.actor("owner"))


def status(person, topic_) -> str | None:
    return Subscription.objects.filter(person=person, topic=topic_) \
        .values_list("status", flat=True).first()


@pytest.mark.django_db
class TestTopics:
    def test_a_new_consent_text_starts_a_new_version(self, world):
        news = topic(world)
        changed = subs.do_change_topic(news, consent_text="Weekly news.",
                                       actor=world.actor("owner"))
        assert (changed.consent_text, changed.consent_version) == ("Weekly news.", 2)

    def test_a_duplicate_key_is_a_clear_error(self, world):
        topic(world)
        with pytest.raises(ValidationError) as caught:
            topic(world)
        assert caught.value.message_dict == {"key": [subs.TOPIC_KEY_TAKEN]}

    @pytest.mark.parametrize("role", ["analyst", "viewer"])
    def test_a_role_without_topics_manage_cannot_create(self, world, role):
        with pytest.raises(NotAuthorized):
            subs.do_create_topic(world.account, "news", "News", consent_text="x",
                                 actor=world.actor(role))


@pytest.mark.django_db
class TestSubscribing:
    def test_single_opt_in_subscribes_at_once_with_a_consent_record(self, world):
        news = topic(world, double_opt_in=False)
        assert subs.do_change_subscription(world.person, news, True, method="api",
                                           ip="203.0.113.9",
                                           actor=world.actor("user")) == SUBSCRIBED
        record = ConsentRecord.objects.get()
        assert (record.status, record.method, record.ip, record.consent_version) == (
            SUBSCRIBED, "api", "203.0.113.9", 1)

    def test_double_opt_in_waits_for_the_mailed_link(self, world, client):
        news = topic(world)
        with mailing():
            assert subs.do_change_subscription(world.person, news, True, method="app",
                                               actor=world.actor("user")) == PENDING
        assert mail.outbox[-1].to == [world.person.email]
        assert not subs.may_email(world.person, news)
        token = last_link("/confirm/")
        assert client.get(f"/confirm/{token}").status_code == 200
        assert status(world.person, news) == PENDING  # a GET (a link scanner) changes nothing
        response = client.post(f"/confirm/{token}")
        assert "your subscription is confirmed" in response.text
        assert status(world.person, news) == SUBSCRIBED
        assert subs.may_email(world.person, news)

    def test_a_confirmation_link_after_unsubscribing_subscribes_nobody(self, world, client):
        news = topic(world)
        with mailing():
            subs.do_change_subscription(world.person, news, True, method="app",
                                        actor=world.actor("user"))
        token = last_link("/confirm/")
        subs.do_change_subscription(world.person, news, False, method="app",
                                    actor=world.actor("user"))
        client.post(f"/confirm/{token}")
        assert status(world.person, news) == UNSUBSCRIBED

    def test_an_expired_confirmation_link_is_refused(self, world, client):
        news = topic(world)
        token = tokens.make(world.person, tokens.CONFIRMATION, topic_id=news.pk)
        subs.do_change_subscription(world.person, news, True, method="app",
                                    actor=world.actor("user"))
        with clock.travel(tokens.LIFETIME[tokens.CONFIRMATION] + dt.timedelta(minutes=1)):
            assert client.post(f"/confirm/{token}").status_code == 404
        assert status(world.person, news) == PENDING

    def test_a_member_cannot_record_a_method_that_belongs_to_the_person(self, world):
        with pytest.raises(ValidationError):
            subs.do_change_subscription(world.person, topic(world), True,
                                        method="confirmation", actor=world.actor("owner"))
        assert not ConsentRecord.objects.exists()

    def test_another_accounts_topic_cannot_be_used(self, world):
        theirs = subs.do_create_topic(world.other, "news", "News", consent_text="x",
                                      actor=world.other_actor())
        with pytest.raises(ValidationError):
            subs.do_change_subscription(world.person, theirs, True, method="app",
                                        actor=world.actor("owner"))

    def test_unsubscribe_all_records_one_all_topics_record(self, world):
        first, second = topic(world, double_opt_in=False), topic(world, key="offers",
                                                                 double_opt_in=False)
        for each in (first, second):
            subs.do_change_subscription(world.person, each, True, method="app",
                                        actor=world.actor("user"))
        assert subs.do_unsubscribe_all(world.person, method="unsubscribe_link") == 2
        assert {status(world.person, first), status(world.person, second)} == {UNSUBSCRIBED}
        assert ConsentRecord.objects.filter(topic__isnull=True).count() == 1


@pytest.mark.django_db
class TestSuppression:
    def test_a_suppressed_address_is_never_mailed(self, world):
        news = topic(world, double_opt_in=False)
        subs.do_change_subscription(world.person, news, True, method="app",
                                    actor=world.actor("user"))
        subs.do_suppress_address(world.account, world.person.email.upper(),
                                 actor=world.actor("user"))
        assert not subs.may_email(world.person, news)

    def test_the_list_keeps_no_address(self, world):
        subs.do_suppress_address(world.account, "gone@example.com", actor=world.actor("user"))
        row = Suppression.objects.get()
        assert "gone" not in row.email_mac
        assert len(row.email_mac) == 64

    def test_erasure_suppresses_the_address_for_good(self, world):
        email = world.person.email
        do_erase_person(world.person, actor=world.actor("owner"))
        assert subs.is_suppressed(world.account.pk, email)
        with pytest.raises(ValidationError, match="stays suppressed"):
            subs.do_unsuppress_address(world.account, email, actor=world.actor("owner"))

    def test_suppression_is_per_account(self, world):
        subs.do_suppress_address(world.account, "gone@example.com", actor=world.actor("user"))
        assert not subs.is_suppressed(world.other.pk, "gone@example.com")

    def test_a_key_version_a_suppression_uses_cannot_be_retired(self, world):
        from enclave.keys.references import reference_counts

        subs.do_suppress_address(world.account, "gone@example.com", actor=world.actor("user"))
        version = Suppression.objects.get().mac_version
        assert reference_counts("tokens", version)["audience.Suppression.email_mac"] == 1


@pytest.mark.django_db
class TestLimits:
    def test_a_fourth_confirmation_mail_within_the_hour_is_refused_and_writes_nothing(
            self, world, monkeypatch):
        from enclave.core import ratelimit

        queued = []
        monkeypatch.setattr(subs.mail, "enqueue", lambda *a, **k: queued.append(k))
        news, actor = topic(world), world.actor("user")
        for _ in range(3):
            subs.do_change_subscription(world.person, news, True, method="app", actor=actor)
            subs.do_change_subscription(world.person, news, False, method="app", actor=actor)
        records = ConsentRecord.objects.count()
        with pytest.raises(ratelimit.Limited):
            subs.do_change_subscription(world.person, news, True, method="app", actor=actor)
        assert len(queued) == 3
        assert status(world.person, news) == UNSUBSCRIBED
        assert ConsentRecord.objects.count() == records

    def test_a_new_hour_allows_another_confirmation(self, world):
        news, actor = topic(world), world.actor("user")
        start = clock.now()
        with clock.frozen(start):
            for _ in range(3):
                subs.do_change_subscription(world.person, news, True, method="app",
                                            actor=actor)
                subs.do_change_subscription(world.person, news, False, method="app",
                                            actor=actor)
        with clock.frozen(start + dt.timedelta(hours=1, minutes=1)):
            assert subs.do_change_subscription(world.person, news, True, method="app",
                                               actor=actor) == PENDING

    def test_suppression_look_ups_past_the_limit_are_refused(self, world, settings):
        from enclave.audience import access
        from enclave.core import ratelimit

        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "suppression.lookup": "2/h"}
        actor = world.actor("user")
        assert access.is_suppressed(actor, "a@example.com") is False
        assert subs.do_unsuppress_address(world.account, "b@example.com",
                                          actor=actor) is False
        with pytest.raises(ratelimit.Limited):
            access.is_suppressed(actor, "c@example.com")
        # Per member: another member still has their own allowance.
        assert access.is_suppressed(world.actor("owner"), "c@example.com") is False
