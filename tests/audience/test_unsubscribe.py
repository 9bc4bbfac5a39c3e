"""An email's one-click unsubscribe link (RFC 8058): a GET changes nothing, a POST from
anywhere — a mailbox provider's server, with no cookie or CSRF token — unsubscribes the
person from the email's topics only, a replay changes nothing more, and a token that is
not a live unsubscribe token opens nothing."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.test import Client

from enclave.audience import tokens
from enclave.audience.models import ConsentRecord, Subscription
from enclave.audience.subscriptions import do_change_subscription, do_create_topic
from enclave.core import clock
from enclave.messaging import headers
from enclave.people.actions import do_erase_person
from tests.people.world import World

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def world(db) -> World:
    return World()


class Mail:
    """A person subscribed to "news" and "offers"; an email sent for "news" only."""

    def __init__(self, world: World) -> None:
        owner = world.actor("owner")
        self.news, self.offers = (
            do_create_topic(world.account, key, key.title(), consent_text="Yes.",
                            double_opt_in=False, actor=owner) for key in ("news", "offers"))
        for topic in (self.news, self.offers):
            do_change_subscription(world.person, topic, True, method="app", actor=owner)
        self.person = world.person
        self.url = headers.unsubscribe_url(world.person, [self.news.pk])
        self.path = urlsplit(self.url).path

    def status(self, topic) -> str:
        return Subscription.objects.get(person=self.person, topic=topic).status


@pytest.fixture
def mail(world) -> Mail:
    return Mail(world)


def provider() -> Client:
    """A mailbox provider's server: no session, and CSRF checks on."""
    return Client(enforce_csrf_checks=True)


@pytest.mark.django_db
class TestOneClick:
    def test_the_headers_name_the_https_link_and_one_click(self, mail):
        assert headers.unsubscribe_headers(mail.url) == {
            "List-Unsubscribe": f"<{mail.url}>",
            "List-Unsubscribe-Post": ONE_CLICK}
        assert mail.url.startswith("https://")

    def test_a_get_changes_nothing(self, mail):
        response = provider().get(mail.path, secure=True)
        assert response.status_code == 200
        assert "Stop receiving News?" in response.content.decode()
        assert mail.status(mail.news) == "subscribed"

    def test_a_one_click_post_unsubscribes_from_the_emails_topics_only(self, mail):
        response = provider().post(mail.path, ONE_CLICK,
                                   content_type="application/x-www-form-urlencoded",
                                   secure=True)
        assert response.status_code == 200
        assert (mail.status(mail.news), mail.status(mail.offers)) == (
            "unsubscribed", "subscribed")
        record = ConsentRecord.objects.filter(person=mail.person).latest("pk")
        assert (record.topic_id, record.method) == (mail.news.pk, "unsubscribe_link")

    def test_a_replayed_post_changes_nothing_more(self, mail):
        provider().post(mail.path, ONE_CLICK, secure=True,
                        content_type="application/x-www-form-urlencoded")
        before = ConsentRecord.objects.count()
        again = provider().post(mail.path, ONE_CLICK, secure=True,
                                content_type="application/x-www-form-urlencoded")
        assert again.status_code == 200
        assert ConsentRecord.objects.count() == before

    def test_a_preference_token_is_not_an_unsubscribe_token(self, mail):
        other = tokens.make(mail.person, tokens.PREFERENCES)
        response = provider().post(f"/unsubscribe/{other}", ONE_CLICK, secure=True,
                                   content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404
        assert mail.status(mail.news) == "subscribed"

    def test_a_tampered_token_opens_nothing(self, mail):
        response = provider().post(mail.path[:-2] + "xx", ONE_CLICK, secure=True,
                                   content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404
        assert mail.status(mail.news) == "subscribed"

    def test_a_link_older_than_its_lifetime_opens_nothing(self, mail):
        with clock.travel(tokens.LIFETIME[tokens.UNSUBSCRIBE] + dt.timedelta(days=1)):
            response = provider().get(mail.path, secure=True)
        assert response.status_code == 404

    def test_an_erased_persons_link_opens_nothing(self, mail, world):
        do_erase_person(mail.person, actor=world.actor("owner"))
        assert provider().get(mail.path, secure=True).status_code == 404


@pytest.mark.django_db
class TestThirdReview:
    def test_one_click_posts_from_one_provider_are_not_throttled_like_pages(self, world):
        owner = world.actor("owner")
        topic = do_create_topic(world.account, "news", "News", consent_text="Yes.",
                                double_opt_in=False, actor=owner)
        paths = []
        for i in range(65):
            person = world.person if i == 0 else type(world.person).objects.create(
                account=world.account, email=f"p{i}@example.net")
            do_change_subscription(person, topic, True, method="app", actor=owner)
            paths.append(urlsplit(headers.unsubscribe_url(person, [topic.pk])).path)
        statuses = {provider().post(path, ONE_CLICK, secure=True,
                                    content_type="application/x-www-form-urlencoded"
                                    ).status_code for path in paths}
        assert statuses == {200}

    def test_a_link_for_twenty_topics_with_long_ids_still_opens(self, mail):
        url = headers.unsubscribe_url(mail.person, [10**12 + i for i in range(19)]
                                      + [mail.news.pk])
        assert provider().get(urlsplit(url).path, secure=True).status_code == 200
