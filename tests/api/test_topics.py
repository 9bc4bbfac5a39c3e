"""Topics, subscriptions, consent history and the suppression list through /api/v1/."""

from __future__ import annotations

import pytest

from enclave.audience import subscriptions as subs
from enclave.audience.models import Suppression
from enclave.people.actions import do_erase_person
from tests.api.conftest import key_client
from tests.api.test_errors import problem

NEWS = {"key": "news", "name": "News", "consent_text": "Monthly news.",
        "double_opt_in": False}


def make_topic(api, **changes):
    return api.post("/api/v1/topics", {**NEWS, **changes})


@pytest.mark.django_db
class TestTopics:
    def test_create_list_and_change(self, api):
        created = make_topic(api)
        assert created.status_code == 201
        body = created.json()
        assert body["form_url"].endswith(f"/subscribe/{subs.Topic.objects.get().public_id}")
        assert [t["key"] for t in api.get("/api/v1/topics").json()["results"]] == ["news"]
        changed = api.patch(f"/api/v1/topics/{body['id']}", {"consent_text": "Weekly."})
        assert (changed.json()["consent_text"], changed.json()["consent_version"]) == (
            "Weekly.", 2)

    def test_a_duplicate_key_is_a_409(self, api):
        make_topic(api)
        problem(make_topic(api), 409, "conflict")

    def test_any_key_of_the_account_may_read_topics(self, world, api):
        make_topic(api)
        narrow = key_client(world, ceiling="viewer", scopes=["topics:read"])
        assert len(narrow.get("/api/v1/topics").json()["results"]) == 1


@pytest.mark.django_db
class TestSubscriptions:
    def test_subscribe_then_history_records_each_change(self, api, world):
        make_topic(api)
        url = f"/api/v1/people/{world.person.pk}/subscriptions"
        assert api.post(url, {"topic": "news", "subscribed": True}).json()["results"][0][
            "status"] == "subscribed"
        api.post(url, {"topic": "news", "subscribed": False})
        history = api.get(f"/api/v1/people/{world.person.pk}/consent").json()["results"]
        assert [(r["status"], r["method"], r["consent_version"]) for r in history] == [
            ("subscribed", "api", 1), ("unsubscribed", "api", 1)]

    def test_double_opt_in_topic_is_pending(self, api, world):
        make_topic(api, double_opt_in=True)
        body = api.post(f"/api/v1/people/{world.person.pk}/subscriptions",
                        {"topic": "news", "subscribed": True}).json()
        assert body["results"][0]["status"] == "pending"

    def test_an_unknown_topic_is_a_409_naming_the_field(self, api, world):
        response = api.post(f"/api/v1/people/{world.person.pk}/subscriptions",
                            {"topic": "nope", "subscribed": True})
        assert problem(response, 409, "conflict")["errors"] == {"topic": ["No such topic."]}

    def test_a_method_belonging_to_the_person_cannot_be_claimed(self, api, world):
        make_topic(api)
        response = api.post(f"/api/v1/people/{world.person.pk}/subscriptions",
                            {"topic": "news", "subscribed": True, "method": "confirmation"})
        problem(response, 422, "validation")

    def test_the_consent_address_is_masked_for_a_masked_key(self, api, world):
        topic = subs.Topic.objects.get(pk=make_topic(api).json()["id"])
        subs.do_change_subscription(world.person, topic, True, method="app",
                                    ip="198.51.100.23", actor=world.actor("owner"))
        analyst = key_client(world, ceiling="analyst")
        response = analyst.get(f"/api/v1/people/{world.person.pk}/consent")
        assert "198.51.100.23" not in response.text
        assert response.json()["results"][0]["ip"] == "•••"


@pytest.mark.django_db
class TestSuppression:
    def test_add_check_and_remove(self, api):
        assert api.post("/api/v1/suppressions", {"email": "Gone@Example.com"}).json() == {
            "changed": True}
        assert api.post("/api/v1/suppressions/check",
                        {"email": "gone@example.com"}).json() == {"suppressed": True}
        assert api.post("/api/v1/suppressions/remove",
                        {"email": "gone@example.com"}).json() == {"changed": True}
        assert not Suppression.objects.exists()

    def test_an_address_suppressed_by_erasure_stays_suppressed(self, api, world):
        email = world.person.email
        do_erase_person(world.person, actor=world.actor("owner"))
        problem(api.post("/api/v1/suppressions/remove", {"email": email}), 409, "conflict")
        assert api.post("/api/v1/suppressions/check", {"email": email}).json() == {
            "suppressed": True}

    @pytest.mark.parametrize("path", ["", "/check", "/remove"])
    def test_something_that_is_not_an_address_is_a_422(self, api, path):
        problem(api.post(f"/api/v1/suppressions{path}", {"email": "0"}), 422, "validation")
        assert not Suppression.objects.exists()

    def test_look_ups_past_the_limit_are_a_429(self, api, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "suppression.lookup": "1/h"}
        api.post("/api/v1/suppressions/check", {"email": "a@b.example"})
        response = api.post("/api/v1/suppressions/check", {"email": "a@b.example"})
        problem(response, 429, "rate-limited")
        assert int(response["Retry-After"]) >= 1

    def test_a_read_only_key_cannot_ask_about_an_address(self, world):
        reader = key_client(world, scopes=["people:read"])
        response = reader.post("/api/v1/suppressions/check", {"email": "a@b.example"})
        problem(response, 403, "insufficient-scope")
