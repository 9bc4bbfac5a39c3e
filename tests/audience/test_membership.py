"""Segment membership rows and their history: kept current incrementally, in full for
rules that depend on time, with one transition per entry and exit."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.audience import actions, membership
from enclave.audience.models import ENTERED, EXITED, SegmentMember, SegmentTransition
from enclave.core import clock
from enclave.events.models import Event
from enclave.people.actions import do_archive_person, do_update_person
from tests.audience.conftest import NOW


def rows(audience, segment) -> set[str]:
    people = [m.person for m in SegmentMember.objects.filter(segment=segment)
              .select_related("person")]
    return audience.names(people)


def history(audience, segment) -> list[tuple[str, str]]:
    by_pk = {p.pk: name for name, p in audience.people.items()}
    return sorted((by_pk[t.person_id], t.kind)
                  for t in SegmentTransition.objects.filter(segment=segment))


def vip_segment(audience, name="VIPs"):
    return actions.do_create_segment(audience.world.account, name, "dynamic",
                                     {"type": "tag", "tag": "vip"},
                                     actor=audience.world.actor("owner"))


@pytest.mark.django_db
class TestRefresh:
    def test_first_refresh_evaluates_everyone_and_records_entries(self, audience):
        segment = vip_segment(audience)
        with clock.frozen(NOW):
            assert membership.refresh_changed() == 1
        assert rows(audience, segment) == {"bob", "dan"}
        assert history(audience, segment) == [("bob", ENTERED), ("dan", ENTERED)]

    def test_a_change_to_a_person_moves_them_in_and_out(self, audience):
        segment = vip_segment(audience)
        owner = audience.world.actor("owner")
        with clock.frozen(NOW):
            membership.refresh_changed()
        with clock.frozen(NOW + dt.timedelta(minutes=10)):
            do_update_person(audience.people["ann"], {"tags": ["vip"]}, actor=owner)
            do_update_person(audience.people["bob"], {"tags": []}, actor=owner)
            membership.refresh_changed()
        assert rows(audience, segment) == {"ann", "dan"}
        assert history(audience, segment) == [("ann", ENTERED), ("bob", ENTERED),
                                              ("bob", EXITED), ("dan", ENTERED)]

    def test_incremental_refresh_looks_only_at_people_changed_since(self, audience):
        """A row changed behind the actions' back (not touching updated_at) is not seen by
        the incremental job — proof that it does not re-evaluate everyone — and is by the
        full evaluation that follows a change of rules."""
        segment = vip_segment(audience)
        with clock.frozen(NOW):
            membership.refresh_changed()
        SegmentMember.objects.filter(segment=segment, person=audience.people["dan"]).delete()
        with clock.frozen(NOW + dt.timedelta(hours=1)):
            membership.refresh_changed()
        assert rows(audience, segment) == {"bob"}
        membership.refresh(segment.pk)
        assert rows(audience, segment) == {"bob", "dan"}

    def test_an_event_moves_a_person_in(self, audience):
        segment = actions.do_create_segment(
            audience.world.account, "Signed up", "dynamic",
            {"type": "event", "name": "Signed up"}, actor=audience.world.actor("owner"))
        with clock.frozen(NOW):
            membership.refresh_changed()
        assert rows(audience, segment) == set()
        with clock.frozen(NOW + dt.timedelta(minutes=3)):
            Event.objects.create(account=audience.world.account, person=audience.people["cat"],
                                 type="track", name="Signed up", occurred_at=clock.now())
            membership.refresh_changed()
        assert rows(audience, segment) == {"cat"}

    def test_archiving_moves_a_person_out(self, audience):
        segment = vip_segment(audience)
        with clock.frozen(NOW):
            membership.refresh_changed()
        with clock.frozen(NOW + dt.timedelta(minutes=2)):
            do_archive_person(audience.people["dan"], actor=audience.world.actor("owner"))
            membership.refresh_changed()
        assert rows(audience, segment) == {"bob"}

    def test_time_alone_moves_people_out_of_a_window(self, audience):
        segment = actions.do_create_segment(
            audience.world.account, "Active", "dynamic",
            {"type": "event", "name": "Viewed page", "min": 3, "within_days": 14},
            actor=audience.world.actor("owner"))
        assert segment.time_dependent
        with clock.frozen(NOW):
            membership.refresh_changed()
        assert rows(audience, segment) == {"ann"}
        with clock.frozen(NOW + dt.timedelta(days=13)):
            assert membership.refresh_time_dependent() == 1
        assert rows(audience, segment) == set()
        assert history(audience, segment) == [("ann", ENTERED), ("ann", EXITED)]

    def _two_changes(self, audience):
        """Three segments refreshed together, then ann joins vip and bob leaves it."""
        segments = [vip_segment(audience, f"VIPs {n}") for n in range(3)]
        owner = audience.world.actor("owner")
        with clock.frozen(NOW):
            membership.refresh_changed()
        with clock.frozen(NOW + dt.timedelta(minutes=10)):
            do_update_person(audience.people["ann"], {"tags": ["vip"]}, actor=owner)
            do_update_person(audience.people["bob"], {"tags": []}, actor=owner)
        return segments

    def test_who_changed_is_asked_once_for_segments_refreshed_together(self, audience,
                                                                     monkeypatch):
        segments = self._two_changes(audience)
        calls = []
        original = membership.changed_since
        monkeypatch.setattr(membership, "changed_since",
                            lambda *a: calls.append(a) or original(*a))
        with clock.frozen(NOW + dt.timedelta(minutes=11)):
            assert membership.refresh_changed() == 3
        assert len(calls) == 1
        assert all(rows(audience, s) == {"ann", "dan"} for s in segments)

    def test_past_the_id_limit_each_segment_diffs_in_the_database(self, audience,
                                                                monkeypatch):
        segments = self._two_changes(audience)
        monkeypatch.setattr(membership, "CHANGED_AS_IDS", 1)
        with clock.frozen(NOW + dt.timedelta(minutes=11)):
            assert membership.refresh_changed() == 3
        assert all(rows(audience, s) == {"ann", "dan"} for s in segments)
        assert history(audience, segments[0]) == [("ann", ENTERED), ("bob", ENTERED),
                                                  ("bob", EXITED), ("dan", ENTERED)]

    def test_refresh_twice_records_nothing_new(self, audience):
        segment = vip_segment(audience)
        with clock.frozen(NOW):
            membership.refresh(segment.pk)
            membership.refresh(segment.pk)
        assert len(history(audience, segment)) == 2

    def test_erasure_removes_membership_and_history(self, audience):
        from enclave.people.actions import do_erase_person

        segment = vip_segment(audience)
        with clock.frozen(NOW):
            membership.refresh(segment.pk)
        do_erase_person(audience.people["bob"], actor=audience.world.actor("owner"))
        assert not SegmentMember.objects.filter(person_id=audience.people["bob"].pk).exists()
        assert not SegmentTransition.objects.filter(
            person_id=audience.people["bob"].pk).exists()


@pytest.mark.django_db
class TestJobsGoOn:
    def test_a_segment_that_fails_does_not_stop_the_others(self, audience, caplog):
        from enclave.audience.models import Segment

        broken = vip_segment(audience, "Broken")
        fine = vip_segment(audience, "Fine")
        # A tree the compiler cannot run (as an anonymised restore could leave): a
        # referenced segment whose stored rules name a field that is gone.
        Segment.objects.filter(pk=broken.pk).update(rules={
            "type": "field", "field": "custom.gone", "op": "equals", "value": "x"})
        with clock.frozen(NOW):
            assert membership.refresh_changed() == 1
        assert rows(audience, fine) == {"bob", "dan"}
        assert "segment refresh failed" in caplog.text


@pytest.mark.django_db
class TestLists:
    def test_adding_to_a_list_updates_segments_that_refer_to_it(self, audience):
        owner = audience.world.actor("owner")
        vip_list = actions.do_create_segment(audience.world.account, "Hand-picked",
                                             "static", actor=owner)
        dynamic = actions.do_create_segment(
            audience.world.account, "Picked in GB", "dynamic",
            {"type": "group", "match": "all", "rules": [
                {"type": "segment", "segment": vip_list.pk},
                {"type": "field", "field": "country", "op": "equals", "value": "GB"}]},
            actor=owner)
        with clock.frozen(NOW):
            membership.refresh_changed()
            added = actions.do_add_segment_people(
                vip_list, [audience.people["cat"].pk, audience.people["bob"].pk], actor=owner)
        assert added == 2
        assert rows(audience, vip_list) == {"bob", "cat"}
        assert rows(audience, dynamic) == {"cat"}
        with clock.frozen(NOW + dt.timedelta(minutes=1)):
            assert actions.do_remove_segment_people(vip_list, [audience.people["cat"].pk],
                                                    actor=owner) == 1
        assert rows(audience, dynamic) == set()
