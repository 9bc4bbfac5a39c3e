"""Sending controls: schedule a broadcast (its audience taken when its time comes),
pause and resume it without losing or repeating a message, throttle a sender domain
across workers, and send a test to oneself."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from enclave.audience.actions import do_create_segment, do_delete_segment
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.validation import MissingReference
from enclave.messaging import actions, pipeline, tasks
from enclave.messaging.models import Broadcast, CapturedMessage, OutboxMessage, SenderDomain
from tests.messaging.test_pipeline import personalised, queue, received, states

START = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def setup(world, local_dns):
    return personalised(world, local_dns)


def fresh(broadcast) -> Broadcast:
    return Broadcast.objects.get(pk=broadcast.pk)


def audited(event) -> list[dict]:
    return list(AuditEvent.objects.filter(event_type=event).values_list("extra_data",
                                                                        flat=True))


@pytest.mark.django_db
class TestSchedule:
    def test_a_scheduled_broadcast_waits_then_goes_to_whoever_is_subscribed_then(
            self, setup, sink, smtp):
        with clock.frozen(START):
            setup.person("ann@example.net")
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(), START + dt.timedelta(hours=2), actor=setup.owner)
            assert actions.start_due_broadcasts() == 0
            setup.person("bob@example.net")  # subscribes after it was scheduled
            clock.advance(dt.timedelta(hours=2))
            assert actions.start_due_broadcasts() == 1
            assert pipeline.run_once(smtp) == {"sent": 2}
        assert (fresh(broadcast).state, fresh(broadcast).recipients) == ("sent", 2)
        assert set(received(sink)) == {"ann@example.net", "bob@example.net"}

    def test_the_worker_job_starts_due_broadcasts(self, setup):
        with clock.frozen(START):
            setup.person("ann@example.net")
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(), START + dt.timedelta(minutes=1), actor=setup.owner)
            clock.advance(dt.timedelta(minutes=1))
            assert tasks.send_outbox() == {"sent": 1}
        assert fresh(broadcast).state == "sent"

    @pytest.mark.parametrize("send_at", [
        START - dt.timedelta(seconds=1), START, START.replace(tzinfo=None),
        START + dt.timedelta(days=367), "2026-12-08T09:00:00Z"])
    def test_a_time_not_in_the_coming_year_is_refused(self, setup, send_at):
        with clock.frozen(START), pytest.raises(ValidationError) as caught:
            actions.do_schedule_broadcast(setup.broadcast(), send_at, actor=setup.owner)
        assert caught.value.message_dict == {"send_at": [actions.broadcasts.NOT_IN_FUTURE]}

    def test_scheduling_needs_a_verified_sender_domain_now(self, setup):
        SenderDomain.objects.filter(pk=setup.sender.pk).update(state="unverified")
        with pytest.raises(MissingReference):
            actions.do_schedule_broadcast(setup.broadcast(),
                                          clock.now() + dt.timedelta(hours=1),
                                          actor=setup.owner)

    def test_one_that_can_no_longer_be_sent_returns_to_draft_saying_why(self, setup):
        owner = setup.owner
        segment = do_create_segment(setup.world.account, "L", "static", actor=owner)
        with clock.frozen(START):
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(segments=[segment.pk]), START + dt.timedelta(hours=1),
                actor=owner)
            do_delete_segment(segment, actor=owner)
            clock.advance(dt.timedelta(hours=1))
            assert actions.start_due_broadcasts() == 0
        after = fresh(broadcast)
        assert (after.state, after.send_at) == ("draft", None)
        assert "No such segment" in after.problem
        assert audited(AuditEventType.BROADCAST_NOT_STARTED) == [{"fields": ["segments"]}]
        assert not OutboxMessage.objects.exists()

    def test_a_broadcast_is_started_once_however_many_workers_try(self, setup):
        with clock.frozen(START):
            setup.person("ann@example.net")
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(), START + dt.timedelta(minutes=1), actor=setup.owner)
            clock.advance(dt.timedelta(minutes=1))
            first = actions.broadcasts.do_start_scheduled_broadcast(
                broadcast.pk, now=clock.now(), actor=None)
            second = actions.broadcasts.do_start_scheduled_broadcast(
                broadcast.pk, now=clock.now(), actor=None)
        assert (first, second) == (True, False)
        assert OutboxMessage.objects.count() == 1

    def test_one_broadcast_failing_to_start_stops_neither_others_nor_sending(
            self, setup, monkeypatch):
        from django.db import DatabaseError

        with clock.frozen(START):
            setup.person("ann@example.net")
            first = actions.do_schedule_broadcast(
                setup.broadcast(name="Broken"), START + dt.timedelta(minutes=1),
                actor=setup.owner)
            second = actions.do_schedule_broadcast(
                setup.broadcast(name="Fine"), START + dt.timedelta(minutes=2),
                actor=setup.owner)
            real = actions.broadcasts.recipients

            def flaky(broadcast, **kwargs):
                if broadcast.pk == first.pk:
                    raise DatabaseError("statement timeout")
                return real(broadcast, **kwargs)

            monkeypatch.setattr(actions.broadcasts, "recipients", flaky)
            clock.advance(dt.timedelta(minutes=2))
            assert tasks.send_outbox() == {"sent": 1}
        assert (fresh(first).state, fresh(second).state) == ("scheduled", "sent")

    def test_a_member_cannot_start_a_scheduled_broadcast_early(self, setup):
        from enclave.access.principal import NotAuthorized

        with pytest.raises(NotAuthorized):
            actions.broadcasts.do_start_scheduled_broadcast(1, now=clock.now(),
                                                             actor=setup.owner)

    def test_cancelling_a_scheduled_broadcast_makes_it_a_draft_again(self, setup):
        broadcast = actions.do_schedule_broadcast(
            setup.broadcast(), clock.now() + dt.timedelta(hours=1), actor=setup.owner)
        after = actions.do_cancel_broadcast(broadcast, actor=setup.owner)
        assert (after.state, after.send_at) == ("draft", None)
        assert actions.start_due_broadcasts(now=clock.now() + dt.timedelta(hours=2)) == 0


# Local-time sending: 09:00 on 2026-12-10 on each recipient's clock.
WALL = dt.datetime(2026, 12, 10, 9, 0)
AT_0900_UTC = WALL.replace(tzinfo=dt.UTC)


def due_at(broadcast) -> dict[str, dt.datetime | None]:
    return dict(OutboxMessage.objects.filter(broadcast=broadcast)
                .values_list("person__email", "next_attempt_at"))


def started(setup, send_at=AT_0900_UTC) -> Broadcast:
    """A broadcast scheduled at ``send_at`` on each recipient's clock, started: the
    clock (frozen by the caller) moved to its start."""
    broadcast = actions.do_schedule_broadcast(setup.broadcast(), send_at, local_time=True,
                                              actor=setup.owner)
    clock.advance(fresh(broadcast).send_at - clock.now())
    assert actions.start_due_broadcasts() == 1
    return broadcast


@pytest.mark.django_db
class TestLocalTime:
    def test_each_recipient_gets_it_at_the_time_on_their_own_clock(self, setup):
        with clock.frozen(START):
            setup.person("tokyo@example.net", time_zone="Asia/Tokyo")
            setup.person("paris@example.net", time_zone="Europe/Paris")
            setup.person("ny@example.net", time_zone="America/New_York")
            broadcast = started(setup)
        assert due_at(broadcast) == {
            "tokyo@example.net": dt.datetime(2026, 12, 10, 0, 0, tzinfo=dt.UTC),
            "paris@example.net": dt.datetime(2026, 12, 10, 8, 0, tzinfo=dt.UTC),
            "ny@example.net": dt.datetime(2026, 12, 10, 14, 0, tzinfo=dt.UTC)}

    def test_people_without_a_time_zone_get_it_at_the_moment_given(self, setup):
        with clock.frozen(START):
            setup.person("nowhere@example.net")
            paris = dt.timezone(dt.timedelta(hours=1))
            broadcast = started(setup, WALL.replace(tzinfo=paris))
        assert due_at(broadcast) == {
            "nowhere@example.net": dt.datetime(2026, 12, 10, 8, 0, tzinfo=dt.UTC)}

    def test_the_wall_clock_time_follows_daylight_saving(self, setup):
        summer = dt.datetime(2027, 7, 1, 9, 0, tzinfo=dt.UTC)
        with clock.frozen(START):
            setup.person("paris@example.net", time_zone="Europe/Paris")
            broadcast = started(setup, summer)
        assert due_at(broadcast) == {
            "paris@example.net": dt.datetime(2027, 7, 1, 7, 0, tzinfo=dt.UTC)}

    def test_the_recipients_are_chosen_when_the_time_first_comes_anywhere(self, setup):
        with clock.frozen(START):
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(), AT_0900_UTC, local_time=True, actor=setup.owner)
        assert fresh(broadcast).send_at == AT_0900_UTC - dt.timedelta(hours=14)

    def test_nobody_is_sent_it_before_their_time(self, setup, sink, smtp):
        with clock.frozen(START):
            setup.person("tokyo@example.net", time_zone="Asia/Tokyo")
            setup.person("ny@example.net", time_zone="America/New_York")
            broadcast = started(setup)
            assert pipeline.run_once(smtp) == {}
            clock.advance(dt.datetime(2026, 12, 10, 0, 0, tzinfo=dt.UTC) - clock.now())
            assert pipeline.run_once(smtp) == {"sent": 1}
            assert set(received(sink)) == {"tokyo@example.net"}
            assert pipeline.progress(fresh(broadcast))["waiting"] == 1
            assert fresh(broadcast).state == "queued"
            clock.advance(dt.timedelta(hours=14))
            assert pipeline.run_once(smtp) == {"sent": 1}
        assert fresh(broadcast).state == "sent"

    def test_a_late_start_sends_at_once_to_those_whose_time_has_passed(self, setup):
        with clock.frozen(START):
            setup.person("tokyo@example.net", time_zone="Asia/Tokyo")
            setup.person("ny@example.net", time_zone="America/New_York")
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(), AT_0900_UTC, local_time=True, actor=setup.owner)
            # The workers were down until 02:00 UTC: Tokyo's 09:00 has passed.
            late = dt.datetime(2026, 12, 10, 2, 0, tzinfo=dt.UTC)
            assert actions.start_due_broadcasts(now=late) == 1
        assert due_at(broadcast) == {
            "tokyo@example.net": None,
            "ny@example.net": dt.datetime(2026, 12, 10, 14, 0, tzinfo=dt.UTC)}

    def test_a_time_that_has_come_somewhere_already_is_refused(self, setup):
        soon = START + dt.timedelta(hours=13)  # already 09:00 tomorrow in UTC+14
        with clock.frozen(START), pytest.raises(ValidationError) as caught:
            actions.do_schedule_broadcast(setup.broadcast(), soon, local_time=True,
                                          actor=setup.owner)
        assert caught.value.message_dict == {"send_at": [actions.broadcasts.LOCAL_TOO_SOON]}

    @pytest.mark.parametrize("stored", ["Mars/Olympus_Mons", "America", "../../etc/passwd",
                                        "x" * 64])
    def test_a_zone_the_tz_database_does_not_have_gets_the_moment_given(self, setup,
                                                                         stored):
        with clock.frozen(START):
            setup.person("gone@example.net", time_zone=stored)
            broadcast = started(setup)
        assert due_at(broadcast) == {"gone@example.net": AT_0900_UTC}

    def test_the_wall_clock_time_is_read_in_the_locked_tz_database_whatever_the_host_has(
            self, setup, tmp_path):
        import zoneinfo
        from importlib import resources

        # The host's own zoneinfo, which zoneinfo searches before the tzdata package,
        # disagrees (an older system database): here its Europe/Paris is Tokyo's.
        (tmp_path / "Europe").mkdir()
        (tmp_path / "Europe" / "Paris").write_bytes(
            resources.files("tzdata.zoneinfo").joinpath("Asia").joinpath("Tokyo")
            .read_bytes())
        zoneinfo.reset_tzpath([str(tmp_path)])
        zoneinfo.ZoneInfo.clear_cache()
        try:
            with clock.frozen(START):
                setup.person("paris@example.net", time_zone="Europe/Paris")
                broadcast = started(setup)
        finally:
            zoneinfo.reset_tzpath()
            zoneinfo.ZoneInfo.clear_cache()
        assert due_at(broadcast) == {
            "paris@example.net": dt.datetime(2026, 12, 10, 8, 0, tzinfo=dt.UTC)}

    def test_unscheduling_forgets_the_local_time(self, setup):
        with clock.frozen(START):
            broadcast = actions.do_schedule_broadcast(
                setup.broadcast(), AT_0900_UTC, local_time=True, actor=setup.owner)
            after = actions.do_cancel_broadcast(broadcast, actor=setup.owner)
        assert (after.state, after.local_at, after.local_offset) == ("draft", None, None)

    def test_the_schedule_audit_row_says_local_time(self, setup):
        with clock.frozen(START):
            actions.do_schedule_broadcast(setup.broadcast(), AT_0900_UTC, local_time=True,
                                          actor=setup.owner)
        assert audited(AuditEventType.BROADCAST_SCHEDULED) == [
            {"send_at": AT_0900_UTC.isoformat(), "local_time": True}]

    def test_a_broadcast_sent_now_has_no_waiting_count(self, setup):
        broadcast = queue(setup, "ann@example.net", time_zone="Asia/Tokyo")
        assert pipeline.progress(broadcast)["waiting"] == 0
        assert due_at(broadcast) == {"ann@example.net": None}


@pytest.mark.django_db
class TestPauseResume:
    def test_a_paused_broadcast_sends_nothing_until_resumed(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        actions.do_pause_broadcast(broadcast, actor=setup.owner)
        assert pipeline.run_once(smtp) == {}
        actions.do_resume_broadcast(broadcast, actor=setup.owner)
        assert pipeline.run_once(smtp) == {"sent": 2}
        assert fresh(broadcast).state == "sent"

    def test_rows_a_worker_holds_when_paused_go_back_to_the_queue_unspent(self, setup,
                                                                            sink, smtp):
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        held = pipeline.claim()
        actions.do_pause_broadcast(broadcast, actor=setup.owner)
        assert pipeline.send_batch(held, smtp) == {}
        assert list(OutboxMessage.objects.values_list("state", "attempts", "lease_id")) == \
            [("queued", 0, "")] * 2
        actions.do_resume_broadcast(broadcast, actor=setup.owner)
        assert pipeline.run_once(smtp) == {"sent": 2}  # at once, not after the lease
        assert len(sink.handler.received) == 2

    def test_rows_a_worker_holds_when_cancelled_end_cancelled(self, setup, sink, smtp):
        broadcast = queue(setup, "ann@example.net")
        held = pipeline.claim()
        actions.do_cancel_broadcast(broadcast, actor=setup.owner)
        assert pipeline.send_batch(held, smtp) == {}
        assert states(broadcast) == {"ann@example.net": "cancelled"}

    def test_a_paused_broadcast_can_be_cancelled(self, setup):
        broadcast = queue(setup, "ann@example.net")
        actions.do_pause_broadcast(broadcast, actor=setup.owner)
        assert actions.do_cancel_broadcast(broadcast, actor=setup.owner).state == "cancelled"
        assert states(broadcast) == {"ann@example.net": "cancelled"}

    def test_resuming_a_broadcast_that_finished_while_paused_sends_it(self, setup, sink,
                                                                       smtp):
        broadcast = queue(setup, "ann@example.net")
        held = pipeline.claim()
        pipeline.send_batch(held, smtp)  # ... while the member pauses it
        OutboxMessage.objects.update(state="sent")  # its last row went out meanwhile
        Broadcast.objects.filter(pk=broadcast.pk).update(state="paused")
        assert actions.do_resume_broadcast(broadcast, actor=setup.owner).state == "sent"

    def test_rows_of_a_dead_worker_of_a_cancelled_broadcast_end_cancelled(self, setup,
                                                                           smtp):
        broadcast = queue(setup, "ann@example.net")
        pipeline.claim()  # the worker dies holding the row
        actions.do_cancel_broadcast(broadcast, actor=setup.owner)
        with clock.travel(pipeline.LEASE + dt.timedelta(seconds=1)):
            pipeline.run_once(smtp)
        assert states(broadcast) == {"ann@example.net": "cancelled"}

    @pytest.mark.parametrize("act", ["do_pause_broadcast", "do_resume_broadcast"])
    def test_pausing_or_resuming_a_draft_is_refused(self, setup, act):
        with pytest.raises(MissingReference):
            getattr(actions, act)(setup.broadcast(), actor=setup.owner)

    def test_pause_and_resume_are_audited(self, setup):
        broadcast = queue(setup, "ann@example.net")
        actions.do_pause_broadcast(broadcast, actor=setup.owner)
        actions.do_resume_broadcast(broadcast, actor=setup.owner)
        assert [len(audited(e)) for e in (AuditEventType.BROADCAST_PAUSED,
                                          AuditEventType.BROADCAST_RESUMED)] == [1, 1]


@pytest.fixture
def frozen_sleep(monkeypatch):
    """``pipeline.sleep`` advances the frozen clock and records each wait."""
    waits = []

    def fake(seconds):
        waits.append(round(seconds, 3))
        clock.advance(dt.timedelta(seconds=seconds))

    monkeypatch.setattr(pipeline, "sleep", fake)
    return waits


@pytest.mark.django_db
class TestFairShare:
    def large_and_small(self, setup) -> tuple[Broadcast, Broadcast]:
        from enclave.audience.actions import do_add_segment_people

        people = [setup.person(f"p{n}@example.net") for n in range(10)]
        large = setup.queue(setup.broadcast(name="Large"))
        few = do_create_segment(setup.world.account, "Few", "static", actor=setup.owner)
        do_add_segment_people(few, [people[0].pk, people[1].pk], actor=setup.owner)
        small = setup.queue(setup.broadcast(name="Small", segments=[few.pk]))
        return large, small

    def claimed_by_broadcast(self, claim) -> list[int]:
        return sorted(OutboxMessage.objects.filter(pk__in=claim.ids)
                      .values_list("broadcast_id", flat=True))

    def test_a_small_broadcast_queued_behind_a_large_one_shares_each_batch(self, setup):
        large, small = self.large_and_small(setup)
        assert self.claimed_by_broadcast(pipeline.claim(4)) == sorted(
            [large.pk, large.pk, small.pk, small.pk])

    def test_what_one_broadcast_cannot_use_goes_to_the_others(self, setup):
        large, small = self.large_and_small(setup)
        assert self.claimed_by_broadcast(pipeline.claim(8)) == sorted(
            [large.pk] * 6 + [small.pk] * 2)

    def test_one_broadcast_alone_gets_the_whole_batch_oldest_first(self, setup):
        for n in range(5):
            setup.person(f"p{n}@example.net")
        broadcast = setup.queue(setup.broadcast())
        claimed = pipeline.claim(3)
        oldest = list(OutboxMessage.objects.filter(broadcast=broadcast).order_by("pk")
                      .values_list("pk", flat=True)[:3])
        assert claimed.ids == oldest


@pytest.mark.django_db
class TestThrottle:
    def test_messages_from_a_throttled_domain_are_spaced_out(self, setup, sink, smtp,
                                                            frozen_sleep):
        actions.do_throttle_sender_domain(setup.sender, 4, actor=setup.owner)
        with clock.frozen(START):
            queue(setup, *(f"p{n}@example.net" for n in range(5)))
            assert pipeline.run_once(smtp) == {"sent": 5}
        assert frozen_sleep == [0.25] * 4

    def test_rows_whose_turn_is_far_off_are_left_for_then(self, setup, sink, smtp,
                                                          frozen_sleep):
        actions.do_throttle_sender_domain(setup.sender, 1, actor=setup.owner)
        turn = START + dt.timedelta(seconds=10)  # other workers took the slots till then
        with clock.frozen(START):
            broadcast = queue(setup, "ann@example.net", "bob@example.net")
            SenderDomain.objects.filter(pk=setup.sender.pk).update(next_slot_at=turn)
            assert pipeline.run_once(smtp) == {}
            assert pipeline.next_throttled_slot() == turn
            assert list(OutboxMessage.objects.values_list("state", "attempts")) == \
                [("queued", 0)] * 2
            clock.advance(dt.timedelta(seconds=10))
            assert pipeline.run_once(smtp) == {"sent": 2}
        assert frozen_sleep == [1.0]
        assert fresh(broadcast).state == "sent"

    def test_a_batch_takes_no_more_than_fits_in_the_pacing_window(self, setup, sink, smtp,
                                                                  frozen_sleep):
        actions.do_throttle_sender_domain(setup.sender, 1, actor=setup.owner)
        with clock.frozen(START):
            queue(setup, *(f"p{n}@example.net" for n in range(8)))
            assert pipeline.run_once(smtp) == {"sent": 5}
            assert list(OutboxMessage.objects.filter(state="queued")
                        .values_list("attempts", flat=True)) == [0, 0, 0]
            assert pipeline.run_once(smtp) == {}  # its next slot is a second away
            clock.advance(dt.timedelta(seconds=1))
            assert pipeline.run_once(smtp) == {"sent": 3}
        assert frozen_sleep == [1.0] * 6

    def test_the_worker_job_waits_for_a_throttled_domains_next_slot(self, setup, sink,
                                                                    frozen_sleep):
        actions.do_throttle_sender_domain(setup.sender, 1, actor=setup.owner)
        with clock.frozen(START):
            queue(setup, *(f"p{n}@example.net" for n in range(8)))
            assert tasks.send_outbox() == {"sent": 8}
        assert frozen_sleep == [1.0] * 7

    def test_a_throttled_domain_does_not_hold_up_other_senders(self, setup, sink, smtp,
                                                                frozen_sleep):
        from enclave.messaging.models import DkimKey

        other = actions.do_add_sender_domain(setup.world.account, "mail.other.example",
                                             actor=setup.owner)
        DkimKey.objects.filter(domain=other).update(state="active")
        SenderDomain.objects.filter(pk=other.pk).update(state="verified")
        actions.do_throttle_sender_domain(setup.sender, 1, actor=setup.owner)
        with clock.frozen(START):
            slow = queue(setup, *(f"p{n}@example.net" for n in range(30)))
            fast = setup.queue(actions.do_create_broadcast(
                setup.world.account, "Fast", template=setup.template,
                sender=SenderDomain.objects.get(pk=other.pk), from_local="news",
                topics=[setup.topic.pk], actor=setup.owner))
            for _ in range(3):  # each claim would find 10 of the slow rows first
                pipeline.run_once(smtp, limit=10)
        assert pipeline.progress(fresh(fast))["sent"] >= 10
        assert pipeline.progress(fresh(slow))["sent"] == 5

    def test_workers_share_one_pace(self, setup, sink, smtp, frozen_sleep):
        actions.do_throttle_sender_domain(setup.sender, 2, actor=setup.owner)
        with clock.frozen(START):
            queue(setup, *(f"p{n}@example.net" for n in range(4)))
            first, second = pipeline.claim(2), pipeline.claim(2)
            pipeline.send_batch(first, smtp)
            pipeline.send_batch(second, smtp)
            # Four slots half a second apart, whichever worker took them.
            assert clock.now() - START == dt.timedelta(seconds=1.5)

    @pytest.mark.parametrize("value", [0, -1, 10_001, True, "5", 2.5])
    def test_a_throttle_out_of_range_is_refused(self, setup, value):
        with pytest.raises(ValidationError):
            actions.do_throttle_sender_domain(setup.sender, value, actor=setup.owner)

    def test_a_throttle_change_is_audited_and_none_lifts_it(self, setup):
        actions.do_throttle_sender_domain(setup.sender, 10, actor=setup.owner)
        sender = actions.do_throttle_sender_domain(setup.sender, None, actor=setup.owner)
        assert sender.max_per_second is None
        assert audited(AuditEventType.SENDER_DOMAIN_THROTTLE_CHANGED) == [
            {"from": None, "to": 10}, {"from": 10, "to": None}]


@pytest.mark.django_db
class TestTestSend:
    def test_a_test_goes_only_to_the_members_own_address(self, setup):
        setup.person("ann@example.net")
        broadcast = setup.broadcast()
        outcome = actions.do_send_test_broadcast(broadcast, actor=setup.owner)
        assert outcome.kind == "sent"
        import email
        import email.policy

        mail = email.message_from_bytes(CapturedMessage.objects.get().raw,
                                        policy=email.policy.default)
        assert (mail["To"], mail["Subject"]) == ("owner@acme.example", "[Test] Hi Ada")
        assert "https://example.com/unsubscribe (preview)" in mail["List-Unsubscribe"]
        assert fresh(broadcast).state == "draft"  # a test changes nothing
        assert audited(AuditEventType.BROADCAST_TEST_SENT) == [
            {"outcome": "sent", "code": 250, "person": None}]

    def test_a_test_for_a_person_shows_their_fields_as_the_member_sees_them(self, setup):
        from enclave.accounts.actions import do_change_role, do_save_custom_role
        from tests.principals import acting

        world = setup.world
        role = do_save_custom_role(world.account, "Senders",
                                   ["email.manage", "people.read"], actor=setup.owner)
        do_change_role(world.membership("viewer"), role, actor=setup.owner)
        masked = acting(world.members["viewer"], world.account)
        actions.do_send_test_broadcast(setup.broadcast(), world.person.pk, actor=masked)
        raw = CapturedMessage.objects.get().raw
        assert world.person.first_name.encode() not in raw
        assert b"X***" in raw

    def test_a_test_for_a_person_is_erased_with_them_and_says_whose(self, setup):
        from enclave.people.actions import do_erase_person

        world = setup.world
        actions.do_send_test_broadcast(setup.broadcast(), world.person.pk, actor=setup.owner)
        assert audited(AuditEventType.BROADCAST_TEST_SENT)[0]["person"] == world.person.pk
        do_erase_person(world.person, actor=setup.owner)
        assert not CapturedMessage.objects.exists()

    def test_a_test_needs_a_verified_sender_domain(self, setup):
        SenderDomain.objects.filter(pk=setup.sender.pk).update(state="unverified")
        with pytest.raises(MissingReference):
            actions.do_send_test_broadcast(setup.broadcast(), actor=setup.owner)
        assert not CapturedMessage.objects.exists()


@pytest.mark.django_db
class TestPages:
    def test_a_draft_is_scheduled_from_its_page_in_utc(self, setup):
        broadcast = setup.broadcast()
        client = setup.world.client("owner")
        when = (clock.now() + dt.timedelta(days=1)).replace(second=0, microsecond=0)
        response = client.post(f"/app/broadcasts/{broadcast.pk}/schedule/",
                               {"send_at": when.strftime("%Y-%m-%dT%H:%M")})
        assert response.status_code == 302
        assert fresh(broadcast).send_at == when
        page = client.get(f"/app/broadcasts/{broadcast.pk}/").content.decode()
        assert when.strftime("%Y-%m-%d %H:%M UTC") in page
        assert "Unschedule" in page

    def test_a_draft_is_scheduled_from_its_page_at_each_recipients_local_time(self,
                                                                            setup):
        broadcast = setup.broadcast()
        client = setup.world.client("owner")
        with clock.frozen(START):
            response = client.post(f"/app/broadcasts/{broadcast.pk}/schedule/",
                                   {"send_at": "2026-12-10T09:00", "local_time": "on"})
            assert response.status_code == 302
            page = client.get(f"/app/broadcasts/{broadcast.pk}/").content.decode()
        assert fresh(broadcast).local_at == AT_0900_UTC
        assert "2026-12-10 09:00 on each recipient's clock" in page
        assert "recipients chosen at <time datetime=\"2026-12-09T19:00:00+00:00\">" in page

    def test_a_local_time_too_soon_is_a_page_message(self, setup):
        broadcast = setup.broadcast()
        with clock.frozen(START):
            response = setup.world.client("owner").post(
                f"/app/broadcasts/{broadcast.pk}/schedule/",
                {"send_at": "2026-12-07T22:00", "local_time": "on"})
        assert response.status_code == 409
        assert "already come in some time zones" in response.content.decode()
        assert fresh(broadcast).state == "draft"

    @pytest.mark.parametrize("typed", ["", "tomorrow", "2026-13-40T99:99"])
    def test_a_time_that_is_not_one_is_a_page_message(self, setup, typed):
        broadcast = setup.broadcast()
        response = setup.world.client("owner").post(
            f"/app/broadcasts/{broadcast.pk}/schedule/", {"send_at": typed})
        assert response.status_code == 422
        assert "A date and time in UTC" in response.content.decode()
        assert fresh(broadcast).state == "draft"

    def test_pause_and_resume_from_the_page(self, setup):
        broadcast = queue(setup, "ann@example.net")
        client = setup.world.client("owner")
        client.post(f"/app/broadcasts/{broadcast.pk}/pause/")
        assert fresh(broadcast).state == "paused"
        assert "Resume" in client.get(f"/app/broadcasts/{broadcast.pk}/").content.decode()
        client.post(f"/app/broadcasts/{broadcast.pk}/resume/")
        assert fresh(broadcast).state == "queued"

    def test_a_test_send_from_the_page_says_so(self, setup):
        response = setup.world.client("owner").post(
            f"/app/broadcasts/{setup.broadcast().pk}/test/")
        assert "Test sent to your address." in response.content.decode()
        assert CapturedMessage.objects.count() == 1

    def test_a_test_send_for_a_person_chosen_in_the_form(self, setup):
        world = setup.world
        setup.world.client("owner").post(f"/app/broadcasts/{setup.broadcast().pk}/test/",
                                         {"person": str(world.person.pk)})
        assert world.person.first_name.encode() in CapturedMessage.objects.get().raw

    def test_test_sends_are_rate_limited_per_member(self, setup, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "broadcast.test": "1/h"}
        client, url = setup.world.client("owner"), f"/app/broadcasts/{setup.broadcast().pk}/test/"
        assert client.post(url).status_code == 200
        assert client.post(url).status_code == 429
        assert CapturedMessage.objects.count() == 1

    def test_the_throttle_is_set_and_lifted_from_the_sender_page(self, setup):
        client, url = setup.world.client("owner"), f"/app/senders/{setup.sender.pk}/throttle/"
        client.post(url, {"max_per_second": "25"})
        assert SenderDomain.objects.get(pk=setup.sender.pk).max_per_second == 25
        client.post(url, {"max_per_second": ""})
        assert SenderDomain.objects.get(pk=setup.sender.pk).max_per_second is None

    @pytest.mark.parametrize("typed", ["0", "abc", "-3", "99999999", "²", "٣"])
    def test_a_throttle_that_is_not_a_rate_is_a_page_message(self, setup, typed):
        response = setup.world.client("owner").post(
            f"/app/senders/{setup.sender.pk}/throttle/", {"max_per_second": typed})
        assert response.status_code == 409
        assert "messages a second" in response.content.decode()
