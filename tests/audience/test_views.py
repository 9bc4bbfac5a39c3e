"""The pages a person uses without signing in: the preference centre, confirmation and
subscribe forms — and what an attacker tries on them."""

from __future__ import annotations

import pytest
from django.core import mail

from enclave.audience import subscriptions as subs
from enclave.audience import tokens
from enclave.audience.models import PENDING, SUBSCRIBED, UNSUBSCRIBED, Subscription
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.conftest import HttpsClient
from tests.identity.helpers import mailing


def topic(world, key="news", *, double_opt_in=False):
    return subs.do_create_topic(world.account, key, key.title(), consent_text="We email.",
                                double_opt_in=double_opt_in, actor=world.actor("owner"))


def status(person, topic_) -> str | None:
    return Subscription.objects.filter(person=person, topic=topic_) \
        .values_list("status", flat=True).first()


def preferences_url(person) -> str:
    return f"/preferences/{tokens.make(person, tokens.PREFERENCES)}"


@pytest.mark.django_db
class TestPreferenceCentre:
    def test_shows_topics_and_what_is_held(self, world, client):
        news = topic(world)
        subs.do_change_subscription(world.person, news, True, method="app",
                                    actor=world.actor("user"))
        page = client.get(preferences_url(world.person)).text
        assert "News" in page
        assert 'checked' in page
        assert world.person.email in page  # their own data, for their own eyes
        assert world.person.company in page

    def test_saving_turns_topics_on_and_off(self, world, client):
        news, offers = topic(world), topic(world, "offers")
        subs.do_change_subscription(world.person, news, True, method="app",
                                    actor=world.actor("user"))
        client.post(preferences_url(world.person), {"action": "save",
                                                     "topic": [offers.public_id]})
        assert (status(world.person, news), status(world.person, offers)) == (
            UNSUBSCRIBED, SUBSCRIBED)

    def test_unsubscribe_from_everything(self, world, client):
        news = topic(world)
        subs.do_change_subscription(world.person, news, True, method="app",
                                    actor=world.actor("user"))
        response = client.post(preferences_url(world.person), {"action": "unsubscribe_all"})
        assert "unsubscribed from everything" in response.text
        assert status(world.person, news) == UNSUBSCRIBED

    def test_asking_to_be_erased_is_recorded_for_the_team(self, world, client):
        client.post(preferences_url(world.person), {"action": "erase"})
        assert AuditEvent.objects.filter(event_type=AuditEventType.ERASURE_REQUESTED,
                                         target_id=str(world.person.pk)).exists()

    def test_a_tampered_token_is_the_invalid_link_page(self, world, client):
        url = preferences_url(world.person)
        assert client.get(url[:-2] + ("AA" if url[-2:] != "AA" else "BB")).status_code == 404

    def test_another_persons_id_in_a_reused_signature_opens_nothing(self, world, client):
        import json

        from django.core.signing import b64_decode, b64_encode

        payload, signature = tokens.make(world.person, tokens.PREFERENCES).split(":")
        data = json.loads(b64_decode(payload.encode()))
        data.update(p=world.other_person.pk, a=world.other.pk)
        forged = b64_encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        assert client.get(f"/preferences/{forged}:{signature}").status_code == 404

    def test_a_confirmation_token_does_not_open_the_preference_centre(self, world, client):
        token = tokens.make(world.person, tokens.CONFIRMATION, topic_id=1)
        assert client.get(f"/preferences/{token}").status_code == 404

    def test_an_erased_persons_link_opens_nothing(self, world, client):
        url = preferences_url(world.person)
        do_erase_person(world.person, actor=world.actor("owner"))
        assert client.get(url).status_code == 404

    def test_posting_without_the_csrf_token_is_refused(self, world):
        news = topic(world)
        subs.do_change_subscription(world.person, news, True, method="app",
                                    actor=world.actor("user"))
        response = HttpsClient(enforce_csrf_checks=True).post(
            preferences_url(world.person), {"action": "unsubscribe_all"})
        assert response.status_code == 403
        assert status(world.person, news) == SUBSCRIBED

    @pytest.mark.parametrize("kind", [tokens.PREFERENCES, tokens.CONFIRMATION])
    def test_the_token_never_reaches_the_logs(self, world, kind):
        from enclave.logs import pipeline

        token = tokens.make(world.person, kind, topic_id=1)
        path = "preferences" if kind == tokens.PREFERENCES else "confirm"
        line = pipeline.get_policy().redact_text(f"GET /{path}/{token} 200")
        assert token not in line
        assert f"/{path}/" in line


@pytest.mark.django_db
class TestSubscribeForm:
    def test_a_cross_site_post_without_csrf_token_subscribes_pending(self, world):
        news = topic(world, double_opt_in=True)
        with mailing():
            response = HttpsClient(enforce_csrf_checks=True).post(
                f"/subscribe/{news.public_id}", {"email": "New@Reader.example"},
                HTTP_ORIGIN="https://shop.example")
        assert "Check your inbox" in response.text
        person = Person.objects.get(account=world.account, email="new@reader.example")
        assert status(person, news) == PENDING
        assert mail.outbox[-1].to == ["new@reader.example"]

    def test_a_form_asks_for_confirmation_even_for_a_single_opt_in_topic(self, world, client):
        news = topic(world, double_opt_in=False)
        client.post(f"/subscribe/{news.public_id}", {"email": world.person.email})
        assert status(world.person, news) == PENDING

    def test_a_known_and_an_unknown_address_get_the_same_page(self, world, client):
        news = topic(world, double_opt_in=True)
        known = client.post(f"/subscribe/{news.public_id}", {"email": world.person.email})
        unknown = client.post(f"/subscribe/{news.public_id}", {"email": "x@new.example"})
        assert known.status_code == unknown.status_code == 200
        assert _main(known) == _main(unknown)

    def test_a_filled_honeypot_changes_nothing(self, world, client):
        news = topic(world)
        client.post(f"/subscribe/{news.public_id}", {"email": "bot@spam.example",
                                                     "website": "http://spam"})
        assert not Person.objects.filter(email="bot@spam.example").exists()

    def test_a_bad_address_is_a_form_error_and_nothing_is_written(self, world, client):
        news = topic(world)
        response = client.post(f"/subscribe/{news.public_id}", {"email": "not an address"})
        assert response.status_code == 422
        assert "valid email" in response.text
        assert Person.objects.filter(account=world.account).count() == 1

    def test_a_flood_from_one_address_is_refused(self, world, client, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "subscribe.ip": "3/min"}
        news = topic(world)
        codes = [client.post(f"/subscribe/{news.public_id}",
                             {"email": f"p{i}@flood.example"}).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert Person.objects.filter(email__endswith="@flood.example").count() == 3

    def test_confirmation_mails_to_one_address_are_limited(self, world, client, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "subscribe.address": "2/h"}
        codes = []
        for key in ("a", "b", "c"):
            news = topic(world, key, double_opt_in=True)
            codes.append(client.post(f"/subscribe/{news.public_id}",
                                     {"email": "victim@inbox.example"}).status_code)
        assert codes == [200, 200, 429]

    def test_a_suppressed_address_is_neither_stored_nor_mailed(self, world, client):
        news = topic(world, double_opt_in=True)
        subs.do_suppress_address(world.account, "complained@inbox.example",
                                 reason="complaint", actor=None)
        with mailing():
            response = client.post(f"/subscribe/{news.public_id}",
                                   {"email": "Complained@Inbox.example"})
        assert "Check your inbox" in response.text  # the usual answer
        assert not Person.objects.filter(email="complained@inbox.example").exists()
        assert mail.outbox == []

    def test_an_erased_persons_address_is_not_brought_back_by_a_form(self, world, client):
        news = topic(world)
        email = world.person.email
        do_erase_person(world.person, actor=world.actor("owner"))
        client.post(f"/subscribe/{news.public_id}", {"email": email})
        assert not Person.objects.filter(account=world.account, email=email).exists()

    def test_the_address_limit_is_per_account(self, world, client, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "subscribe.address": "1/h"}
        ours = topic(world)
        theirs = subs.do_create_topic(world.other, "news", "News", consent_text="x",
                                      actor=world.other_actor())
        assert client.post(f"/subscribe/{ours.public_id}",
                           {"email": "v@inbox.example"}).status_code == 200
        assert client.post(f"/subscribe/{theirs.public_id}",
                           {"email": "v@inbox.example"}).status_code == 200

    def test_an_unknown_form_is_the_invalid_link_page(self, client):
        assert client.post("/subscribe/nope", {"email": "a@b.example"}).status_code == 404


def _main(response) -> str:
    text = response.text
    return text[text.index("<main"):text.index("</main>")]
