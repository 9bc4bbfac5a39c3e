"""Broadcasts through /api/v1/broadcasts: draft, send now, watch the progress until it is
sent (the capture transport, the worker job), and the refusals as problem+json."""

from __future__ import annotations

import pytest

from enclave.audience.subscriptions import do_change_subscription
from enclave.messaging import tasks
from enclave.people.models import Person
from tests.api.test_errors import problem
from tests.messaging.test_broadcasts import Setup


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return Setup(world, local_dns)


def body(setup, **changes) -> dict:
    return {"name": "June news", "template": setup.template.pk,
            "sender": setup.sender.pk, "from_local": "news", "from_name": "Acme",
            "topics": [setup.topic.pk], **changes}


@pytest.mark.django_db
class TestBroadcasts:
    def test_draft_send_and_watch_it_finish(self, api, setup):
        setup.person("ann@example.net")
        setup.person("bob@example.net")
        created = api.post("/api/v1/broadcasts", body(setup))
        assert created.status_code == 201
        assert created.json()["from_address"] == "news@news.acme.example"
        url = created["Location"]
        queued = api.post(url + "/queue").json()
        assert (queued["state"], queued["recipients"], queued["progress"]["queued"]) == (
            "queued", 2, 2)
        tasks.send_outbox()
        done = api.get(url).json()
        assert (done["state"], done["progress"]["sent"]) == ("sent", 2)

    def test_tracking_is_off_unless_asked_for(self, api, setup):
        plain = api.post("/api/v1/broadcasts", body(setup)).json()
        tracked = api.post("/api/v1/broadcasts",
                           body(setup, name="Tracked", track_opens=True,
                                track_clicks=True)).json()
        assert (plain["track_opens"], plain["track_clicks"]) == (False, False)
        assert (tracked["track_opens"], tracked["track_clicks"]) == (True, True)
        assert (tracked["progress"]["opened"], tracked["progress"]["clicked"]) == (0, 0)

    def test_a_body_naming_another_accounts_template_is_a_409(self, api, setup, world):
        from enclave.messaging.actions import do_create_template

        theirs = do_create_template(world.other, "T", "html", "Hi", "<p>x</p>",
                                    actor=world.other_actor())
        response = problem(api.post("/api/v1/broadcasts", body(setup, template=theirs.pk)),
                           409, "conflict")
        assert response["errors"] == {"template": ["No such template."]}

    def test_a_broadcast_needs_a_topic(self, api, setup):
        problem(api.post("/api/v1/broadcasts", body(setup, topics=[])), 422, "validation")

    def test_a_from_address_with_an_at_is_refused(self, api, setup):
        problem(api.post("/api/v1/broadcasts", body(setup, from_local="a@b")), 422,
                "validation")

    def test_sending_twice_is_a_409(self, api, setup):
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        api.post(url + "/queue")
        problem(api.post(url + "/queue"), 409, "conflict")

    def test_cancel_stops_what_is_queued(self, api, setup):
        setup.person("ann@example.net")
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        api.post(url + "/queue")
        cancelled = api.post(url + "/cancel").json()
        assert cancelled["state"] == "cancelled"
        assert tasks.send_outbox() == {}

    def test_a_queued_broadcast_cannot_be_deleted(self, api, setup):
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        api.post(url + "/queue")
        problem(api.delete(url), 409, "conflict")

    def test_the_list_is_newest_first(self, api, setup):
        api.post("/api/v1/broadcasts", body(setup, name="First"))
        api.post("/api/v1/broadcasts", body(setup, name="Second"))
        names = [b["name"] for b in api.get("/api/v1/broadcasts").json()["results"]]
        assert names == ["Second", "First"]

    def test_unsubscribing_after_queuing_shows_as_skipped(self, api, setup):
        setup.person("ann@example.net")
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        api.post(url + "/queue")
        ann = Person.objects.get(email="ann@example.net")
        do_change_subscription(ann, setup.topic, False, method="app", actor=setup.owner)
        tasks.send_outbox()
        assert api.get(url).json()["progress"]["skipped"] == 1


@pytest.mark.django_db
def test_a_from_name_with_a_line_break_is_refused(api, setup):
    problem(api.post("/api/v1/broadcasts", body(setup, from_name="Acme\r\nBcc: x@y.z")),
            422, "validation")


@pytest.mark.django_db
def test_an_encoded_word_in_the_from_name_is_refused(api, setup):
    problem(api.post("/api/v1/broadcasts",
                     body(setup, from_name="=?utf-8?b?c2VjdXJpdHlAYmFuay5leGFtcGxl?=")),
            422, "validation")


@pytest.mark.django_db
def test_a_template_a_broadcast_uses_cannot_be_deleted(api, setup):
    api.post("/api/v1/broadcasts", body(setup))
    response = problem(api.delete(f"/api/v1/templates/{setup.template.pk}"), 409, "conflict")
    assert response["errors"] == {"template": [
        "Broadcasts or transactional messages use this template; it stays with their "
        "record."]}


@pytest.mark.django_db
class TestSendingControls:
    def test_schedule_then_unschedule(self, api, setup):
        import datetime as dt

        from enclave.core import clock

        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        when = (clock.now() + dt.timedelta(days=2)).replace(microsecond=0)
        scheduled = api.post(url + "/schedule", {"send_at": when.isoformat()})
        assert scheduled.status_code == 200
        assert (scheduled.json()["state"], scheduled.json()["send_at"]) == (
            "scheduled", when.isoformat())
        back = api.post(url + "/cancel").json()
        assert (back["state"], back["send_at"]) == ("draft", None)

    def test_a_schedule_answers_send_at_in_utc_as_a_read_does(self, api, setup):
        import datetime as dt

        from enclave.core import clock

        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        when = (clock.now() + dt.timedelta(days=2)).replace(microsecond=0)
        given = when.astimezone(dt.timezone(dt.timedelta(hours=-5)))
        scheduled = api.post(url + "/schedule", {"send_at": given.isoformat()}).json()
        assert (scheduled["send_at"], api.get(url).json()["send_at"]) == (
            when.astimezone(dt.UTC).isoformat(), when.astimezone(dt.UTC).isoformat())

    def test_schedule_at_each_recipients_local_time(self, api, setup):
        import datetime as dt

        from enclave.core import clock

        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        wall = (clock.now() + dt.timedelta(days=2)).replace(microsecond=0, tzinfo=None)
        given = wall.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
        scheduled = api.post(url + "/schedule",
                             {"send_at": given.isoformat(), "local_time": True}).json()
        assert (scheduled["state"], scheduled["local_time"], scheduled["send_at"]) == (
            "scheduled", given.isoformat(),
            (wall.replace(tzinfo=dt.UTC) - dt.timedelta(hours=14)).isoformat())
        back = api.post(url + "/cancel").json()
        assert (back["state"], back["local_time"]) == ("draft", None)

    @pytest.mark.parametrize("flag", ["yes", 1, None])
    def test_local_time_that_is_not_a_boolean_is_a_422(self, api, setup, flag):
        import datetime as dt

        from enclave.core import clock

        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        when = clock.now() + dt.timedelta(days=2)
        response = problem(api.post(url + "/schedule", {"send_at": when.isoformat(),
                                                        "local_time": flag}),
                           422, "validation")
        assert list(response["errors"]) == ["local_time"]
        assert api.get(url).json()["state"] == "draft"

    @pytest.mark.parametrize("send_at", ["2030-01-01T09:00:00", "tomorrow", 1767258000,
                                         None, ""])
    def test_a_time_without_an_offset_or_not_a_time_is_a_422(self, api, setup, send_at):
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        problem(api.post(url + "/schedule", {"send_at": send_at}), 422, "validation")
        assert api.get(url).json()["state"] == "draft"

    def test_a_time_in_the_past_is_a_422(self, api, setup):
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        response = problem(api.post(url + "/schedule",
                                    {"send_at": "2020-01-01T09:00:00Z"}), 422, "validation")
        assert list(response["errors"]) == ["send_at"]

    def test_pause_and_resume(self, api, setup):
        setup.person("ann@example.net")
        url = api.post("/api/v1/broadcasts", body(setup))["Location"]
        api.post(url + "/queue")
        assert api.post(url + "/pause").json()["state"] == "paused"
        assert tasks.send_outbox() == {}
        assert api.post(url + "/resume").json()["state"] == "queued"
        tasks.send_outbox()
        assert api.get(url).json()["progress"]["sent"] == 1

    def test_the_throttle_is_set_and_lifted(self, api, setup):
        url = f"/api/v1/sender-domains/{setup.sender.pk}/throttle"
        assert api.post(url, {"max_per_second": 50}).json()["max_per_second"] == 50
        assert api.post(url, {"max_per_second": None}).json()["max_per_second"] is None

    @pytest.mark.parametrize("value", [0, 10_001, "5", 2.5, True])
    def test_a_throttle_that_is_not_a_rate_is_a_422(self, api, setup, value):
        url = f"/api/v1/sender-domains/{setup.sender.pk}/throttle"
        problem(api.post(url, {"max_per_second": value}), 422, "validation")
