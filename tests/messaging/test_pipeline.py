"""The send pipeline against a real SMTP server and a real DNS server on 127.0.0.1:
every eligible recipient gets one signed, personalised message; refusals, drops and a
worker that dies mid-batch end as designed; nothing is sent twice."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import dkim as dkimpy
import pytest

from enclave.audience import subscriptions
from enclave.audience.subscriptions import do_change_subscription
from enclave.core import clock
from enclave.messaging import actions, pipeline
from enclave.messaging.models import Broadcast, OutboxMessage, SenderDomain
from tests.messaging.test_broadcasts import Setup


def personalised(world, local_dns) -> Setup:
    """The broadcast Setup with a template greeting each person by name, with the
    unsubscribe link."""
    made = Setup(world, local_dns)
    made.template = actions.do_change_template(
        made.template, subject="Hi {{ person.first_name }}",
        source="<p>Hello {{ person.first_name }}</p>"
               "<a href='{{ unsubscribe_url }}'>unsubscribe</a>", actor=made.owner)
    return made


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return personalised(world, local_dns)


def received(sink) -> dict[str, email.message.EmailMessage]:
    return {rcpt[0]: email.message_from_bytes(raw, policy=email.policy.default)
            for _, rcpt, raw in sink.handler.received}


def states(broadcast) -> dict[str, str]:
    return dict(OutboxMessage.objects.filter(broadcast=broadcast)
                .values_list("person__email", "state"))


def queue(setup, *emails, **fields):
    for address in emails:
        setup.person(address, first_name=address.split("@")[0].title(), **fields)
    return setup.queue(setup.broadcast())


@pytest.mark.django_db
class TestSending:
    def test_every_recipient_gets_one_signed_personalised_message(self, setup, sink, smtp,
                                                                  local_dns):
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        assert pipeline.run_once(smtp) == {"sent": 2}
        mails = received(sink)
        assert set(mails) == {"ann@example.net", "bob@example.net"}
        ann = mails["ann@example.net"]
        assert ann["Subject"] == "Hi Ann"
        assert "Hello Ann" in ann.get_body(("html",)).get_content()
        assert ann["List-Unsubscribe"].startswith("<https://")
        record = local_dns.txt[next(n for n in local_dns.txt if "_domainkey" in n)][0]
        raw = next(r for _, rcpt, r in sink.handler.received if rcpt == ["ann@example.net"])
        assert dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: record.encode())
        assert Broadcast.objects.get(pk=broadcast.pk).state == "sent"

    def test_a_second_run_sends_nothing_again(self, setup, sink, smtp):
        queue(setup, "ann@example.net")
        pipeline.run_once(smtp)
        assert pipeline.run_once(smtp) == {}
        assert len(sink.handler.received) == 1

    def test_someone_who_unsubscribed_after_queuing_is_skipped(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        bob = OutboxMessage.objects.get(person__email="bob@example.net").person
        do_change_subscription(bob, setup.topic, False, method="app", actor=setup.owner)
        assert pipeline.run_once(smtp) == {"sent": 1, "skipped": 1}
        assert states(broadcast)["bob@example.net"] == "skipped"

    def test_an_address_suppressed_after_queuing_is_skipped(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net")
        subscriptions.do_suppress_address(setup.world.account, "ann@example.net",
                                          actor=setup.owner)
        pipeline.run_once(smtp)
        assert (states(broadcast), sink.handler.received) == (
            {"ann@example.net": "skipped"}, [])

    def test_only_the_suppressed_address_of_a_batch_is_skipped(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net", "bob@example.net", "cy@example.net")
        subscriptions.do_suppress_address(setup.world.account, " BOB@Example.net",
                                          actor=setup.owner)
        assert pipeline.run_once(smtp) == {"sent": 2, "skipped": 1}
        assert states(broadcast)["bob@example.net"] == "skipped"

    def test_eligibility_costs_the_same_queries_for_any_batch_size(self, setup):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        queue(setup, *(f"p{n}@example.net" for n in range(12)))
        rows = list(OutboxMessage.objects.select_related("person", "broadcast")
                    .order_by("pk"))
        with CaptureQueriesContext(connection) as one:
            pipeline._ineligible(rows[:1])
        with CaptureQueriesContext(connection) as twelve:
            pipeline._ineligible(rows)
        assert len(twelve) == len(one) == 3  # subscriptions, MAC keys, suppressions

    def test_a_hard_bounce_fails_and_suppresses_the_address(self, setup, sink, smtp):
        sink.handler.refuse["gone@example.net"] = "550 5.1.1 <gone@example.net> unknown"
        broadcast = queue(setup, "gone@example.net", "ann@example.net")
        assert pipeline.run_once(smtp) == {"sent": 1, "failed": 1}
        row = OutboxMessage.objects.get(person__email="gone@example.net")
        assert (row.state, row.detail) == ("failed", "550 5.1.1")
        assert subscriptions.is_suppressed(setup.world.account.pk, "gone@example.net")
        assert Broadcast.objects.get(pk=broadcast.pk).state == "sent"

    def test_a_temporary_refusal_is_retried_later_as_the_same_message(self, setup, sink,
                                                                      smtp):
        sink.handler.refuse["busy@example.net"] = "451 4.7.1 <busy@example.net> later"
        broadcast = queue(setup, "busy@example.net")
        assert pipeline.run_once(smtp) == {"deferred": 1}
        first = OutboxMessage.objects.get()
        assert pipeline.run_once(smtp) == {}  # not due yet
        del sink.handler.refuse["busy@example.net"]
        with clock.travel(dt.timedelta(minutes=2)):
            assert pipeline.run_once(smtp) == {"sent": 1}
        mail = received(sink)["busy@example.net"]
        assert mail["Message-ID"] == f"<{first.message_id}@news.acme.example>"
        assert Broadcast.objects.get(pk=broadcast.pk).state == "sent"

    def test_a_dropped_connection_defers_only_the_message_in_flight(self, setup, sink,
                                                                    smtp):
        sink.handler.drop_next = 1
        queue(setup, "ann@example.net", "bob@example.net")
        assert pipeline.run_once(smtp) == {"deferred": 1, "sent": 1}

    def test_retries_stop_after_the_last_attempt(self, setup, sink, smtp):
        sink.handler.refuse["busy@example.net"] = "451 4.7.1 later"
        queue(setup, "busy@example.net")
        for hours in range(pipeline.MAX_ATTEMPTS):
            with clock.travel(dt.timedelta(hours=7 * hours)):
                pipeline.run_once(smtp)
        row = OutboxMessage.objects.get()
        assert (row.state, row.attempts, row.detail) == ("failed", pipeline.MAX_ATTEMPTS,
                                                         "gave up: 451 4.7.1")

    def test_rows_of_a_worker_that_died_are_taken_again_after_the_lease(self, setup, sink,
                                                                         smtp):
        queue(setup, "ann@example.net")
        assert len(pipeline.claim().ids) == 1  # a worker claims, then dies before sending
        assert pipeline.run_once(smtp) == {}  # still leased to it
        with clock.travel(pipeline.LEASE + dt.timedelta(seconds=1)):
            assert pipeline.run_once(smtp) == {"sent": 1}
        assert len(sink.handler.received) == 1

    def test_a_sender_domain_that_lost_verification_sends_nothing_unsigned(self, setup,
                                                                           sink, smtp):
        queue(setup, "ann@example.net")
        SenderDomain.objects.filter(pk=setup.sender.pk).update(state="unverified")
        assert pipeline.run_once(smtp) == {"deferred": 1}
        assert sink.handler.received == []

    def test_a_cancelled_broadcast_sends_nothing(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net")
        actions.do_cancel_broadcast(broadcast, actor=setup.owner)
        assert pipeline.run_once(smtp) == {}

    def test_a_recipient_whose_data_breaks_the_template_fails_alone(self, setup, sink,
                                                                     smtp):
        # Fine for the sample person (country GB) when saved; not for a country "ZZ".
        setup.template = actions.do_change_template(
            setup.template, source="<p>Hi{% if person.country == 'ZZ' %}"
                                   "{{ 1 | divided_by: 0 }}{% endif %}</p>",
            actor=setup.owner)
        setup.person("bad@example.net", country="ZZ")
        broadcast = queue(setup, "ann@example.net")
        assert pipeline.run_once(smtp) == {"sent": 1, "failed": 1}
        assert states(broadcast)["bad@example.net"] == "failed"
        assert list(received(sink)) == ["ann@example.net"]


@pytest.mark.django_db
class TestThirdReview:
    """What a third attacker's review found in the pipeline."""

    def test_a_worker_whose_lease_was_taken_over_sends_nothing(self, setup, sink, smtp):
        queue(setup, "ann@example.net", "bob@example.net")
        slow = pipeline.claim()  # worker A claims, then stalls past its lease
        with clock.travel(pipeline.LEASE + dt.timedelta(seconds=1)):
            assert pipeline.run_once(smtp) == {"sent": 2}  # worker B takes over
            assert pipeline.send_batch(slow, smtp) == {}  # A wakes up: holds nothing
        assert len(sink.handler.received) == 2

    def test_a_lost_worker_after_the_last_attempt_fails_the_row(self, setup, sink, smtp):
        queue(setup, "ann@example.net")
        OutboxMessage.objects.update(attempts=pipeline.MAX_ATTEMPTS)
        pipeline.claim()  # counts one more attempt, then the worker is lost
        with clock.travel(pipeline.LEASE + dt.timedelta(seconds=1)):
            assert pipeline.run_once(smtp) == {}
        row = OutboxMessage.objects.get()
        assert (row.state, row.detail) == ("failed", "gave up: worker lost")
        assert sink.handler.received == []

    def test_a_broadcast_with_nobody_to_send_to_is_sent_at_once(self, setup):
        assert setup.queue(setup.broadcast()).state == "sent"

    def test_a_broadcast_whose_last_recipient_was_erased_finishes(self, setup, smtp, world):
        from enclave.people.actions import do_erase_person

        broadcast = queue(setup, "ann@example.net")
        do_erase_person(OutboxMessage.objects.get().person, actor=world.actor("owner"))
        assert pipeline.run_once(smtp) == {}
        assert Broadcast.objects.get(pk=broadcast.pk).state == "sent"

    def test_cancelling_also_stops_deferred_messages(self, setup, sink, smtp):
        sink.handler.refuse["busy@example.net"] = "451 4.7.1 later"
        broadcast = queue(setup, "busy@example.net")
        pipeline.run_once(smtp)
        actions.do_cancel_broadcast(broadcast, actor=setup.owner)
        assert states(broadcast) == {"busy@example.net": "cancelled"}

    def test_a_recipient_too_costly_to_render_fails_alone(self, setup, sink, smtp,
                                                          monkeypatch):
        from enclave.messaging import rendering

        heavy = "{% if i == 1 %}{% endif %}" * 400
        setup.template = actions.do_change_template(
            setup.template, source="<p>Hi{% if person.country == 'ZZ' %}"
                                   f"{{% for i in (1..10000) %}}{heavy}{{% endfor %}}"
                                   "{% endif %}</p>", actor=setup.owner)
        monkeypatch.setattr(rendering, "BATCH_CPU_SECONDS", 1)
        setup.person("heavy@example.net", country="ZZ")
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        assert pipeline.run_once(smtp) == {"sent": 2, "failed": 1}
        row = OutboxMessage.objects.get(broadcast=broadcast, person__country="ZZ")
        assert (row.state, row.detail) == ("failed", "render limits")


class Watching:
    """A transport that, at each hand-over, notes how many of the broadcast's rows the
    database already has as sent, then hands the message to the real one."""

    def __init__(self, transport, broadcast) -> None:
        self.transport, self.broadcast, self.recorded = transport, broadcast, []

    def send(self, envelope, raw):
        self.recorded.append(self.sent_so_far())
        return self.transport.send(envelope, raw)

    def sent_so_far(self) -> int:
        return OutboxMessage.objects.filter(broadcast=self.broadcast, state="sent").count()


@pytest.mark.django_db
class TestOutcomesAreRecordedInTime:
    """An outcome write may ride along with the next lease renewal, but never later than
    the next hand-over: a worker killed mid-batch leaves unrecorded at most the message
    it was handing over."""

    def test_each_outcome_is_in_the_database_before_the_next_hand_over(self, setup, sink,
                                                                      smtp):
        broadcast = queue(setup, *(f"p{n}@example.net" for n in range(6)))
        watching = Watching(smtp, broadcast)
        assert pipeline.run_once(watching) == {"sent": 6}
        assert watching.recorded == [0, 1, 2, 3, 4, 5]

    def test_the_last_outcome_of_a_batch_is_recorded_when_it_ends(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        pipeline.send_batch(pipeline.claim(), smtp)
        assert states(broadcast) == {"ann@example.net": "sent", "bob@example.net": "sent"}

    def test_a_failed_outcome_is_recorded_before_the_next_hand_over(self, setup, sink,
                                                                   smtp):
        sink.handler.refuse["a-gone@example.net"] = "550 5.1.1 no such user"
        broadcast = queue(setup, "a-gone@example.net", "b@example.net")
        watching = Watching(smtp, broadcast)
        watching.sent_so_far = lambda: OutboxMessage.objects.filter(
            broadcast=broadcast, state="failed").count()
        assert pipeline.run_once(watching) == {"failed": 1, "sent": 1}
        assert watching.recorded == [0, 1]

    def test_nothing_is_held_back_while_waiting_for_a_throttled_turn(self, setup, sink,
                                                                    smtp, monkeypatch):
        actions.do_throttle_sender_domain(setup.sender, 2, actor=setup.owner)
        broadcast = queue(setup, *(f"p{n}@example.net" for n in range(3)))
        at_each_wait = []

        def sleep(seconds):
            at_each_wait.append(Watching(smtp, broadcast).sent_so_far())
            clock.advance(dt.timedelta(seconds=seconds))

        monkeypatch.setattr(pipeline, "sleep", sleep)
        with clock.frozen(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)):
            assert pipeline.run_once(smtp) == {"sent": 3}
        assert at_each_wait == [1, 2]
