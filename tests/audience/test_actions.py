"""Segment actions: who may, what is audited (never a rule's values), and bad input that
writes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enclave.access.principal import NotAuthorized
from enclave.audience import actions
from enclave.audience.models import Segment, SegmentMember
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.validation import MissingReference

EMAIL_RULE = {"type": "field", "field": "email", "op": "equals", "value": "ann@shop.example"}
TAG_RULE = {"type": "tag", "tag": "vip"}


def create(audience, role="user", name="S", kind="dynamic", rule=TAG_RULE):
    return actions.do_create_segment(audience.world.account, name, kind,
                                     rule if kind == "dynamic" else None,
                                     actor=audience.world.actor(role))


@pytest.mark.django_db
class TestCreate:
    def test_creates_a_dynamic_segment_with_its_rules(self, audience):
        segment = create(audience)
        assert (segment.kind, segment.rules, segment.time_dependent) == (
            "dynamic", {"type": "tag", "tag": "vip", "has": True}, False)

    def test_audit_row_names_the_segment_never_the_rule_values(self, audience):
        segment = create(audience, rule=EMAIL_RULE)
        event = AuditEvent.objects.get(event_type=AuditEventType.SEGMENT_CREATED)
        assert (event.target_type, event.target_id, event.extra_data) == (
            "segment", str(segment.pk), {"kind": "dynamic"})
        assert "ann@shop.example" not in str(event.extra_data)

    @pytest.mark.parametrize("role", ["analyst", "viewer"])
    def test_a_role_without_segments_manage_cannot_create(self, audience, role):
        with pytest.raises(NotAuthorized):
            create(audience, role)
        assert not Segment.objects.exists()

    def test_a_rule_on_a_field_masked_to_the_author_writes_nothing(self, audience):
        from dataclasses import replace

        from enclave.access.permissions import Permission

        actor = audience.world.actor("user")
        masked = replace(actor, perms=actor.perms - {Permission.PEOPLE_WRITE})
        with pytest.raises(ValidationError) as caught:
            actions.do_create_segment(audience.world.account, "S", "dynamic", EMAIL_RULE,
                                      actor=masked)
        assert "not visible in full" in str(caught.value)
        assert not Segment.objects.exists()
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.SEGMENT_CREATED).exists()

    def test_duplicate_name_is_a_clear_error(self, audience):
        create(audience, name="Same")
        with pytest.raises(ValidationError) as caught:
            create(audience, name="  Same ")
        assert caught.value.message_dict == {"name": ["Another segment has this name."]}

    def test_a_static_list_takes_no_rules(self, audience):
        with pytest.raises(ValidationError, match="no rules"):
            actions.do_create_segment(audience.world.account, "L", "static", TAG_RULE,
                                      actor=audience.world.actor("user"))

    @pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b"])
    def test_a_bad_name_is_refused(self, audience, name):
        with pytest.raises(ValidationError):
            create(audience, name=name)

    def test_another_accounts_principal_cannot_create_here(self, audience):
        with pytest.raises(NotAuthorized):
            actions.do_create_segment(audience.world.account, "S", "dynamic", TAG_RULE,
                                      actor=audience.world.other_actor())


@pytest.mark.django_db
class TestChange:
    def test_new_rules_are_saved_and_the_next_refresh_is_full(self, audience):
        from enclave.audience import membership

        segment = create(audience)
        membership.refresh(segment.pk)
        changed = actions.do_change_segment(segment, rule_data=EMAIL_RULE,
                                            actor=audience.world.actor("user"))
        assert changed.rules["field"] == "email"
        assert changed.refreshed_at is None
        event = AuditEvent.objects.get(event_type=AuditEventType.SEGMENT_CHANGED)
        assert event.extra_data == {"fields": ["rules"]}

    def test_no_change_writes_no_audit_row(self, audience):
        segment = create(audience)
        actions.do_change_segment(segment, name="S", rule_data=TAG_RULE,
                                  actor=audience.world.actor("user"))
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.SEGMENT_CHANGED).exists()

    def test_a_segment_cannot_be_made_to_refer_to_itself(self, audience):
        segment = create(audience)
        with pytest.raises(ValidationError, match="refer to itself"):
            actions.do_change_segment(segment, rule_data={"type": "segment",
                                                          "segment": segment.pk},
                                      actor=audience.world.actor("user"))
        segment.refresh_from_db()
        assert segment.rules == {"type": "tag", "tag": "vip", "has": True}


@pytest.mark.django_db
class TestDelete:
    def test_deletes_with_rows(self, audience):
        listed = create(audience, kind="static")
        actions.do_add_segment_people(listed, [audience.people["ann"].pk],
                                      actor=audience.world.actor("user"))
        actions.do_delete_segment(listed, actor=audience.world.actor("user"))
        assert not Segment.objects.exists()
        assert not SegmentMember.objects.exists()
        assert AuditEvent.objects.filter(event_type=AuditEventType.SEGMENT_DELETED).exists()

    def test_a_segment_another_refers_to_cannot_be_deleted(self, audience):
        inner = create(audience, name="Inner")
        create(audience, name="Outer", rule={"type": "segment", "segment": inner.pk})
        with pytest.raises(ValidationError, match="Other segments refer to this one"):
            actions.do_delete_segment(inner, actor=audience.world.actor("user"))
        assert Segment.objects.filter(pk=inner.pk).exists()


@pytest.mark.django_db
class TestListPeople:
    def test_another_accounts_person_cannot_be_added(self, audience):
        listed = create(audience, kind="static")
        with pytest.raises(MissingReference, match="No such person"):
            actions.do_add_segment_people(
                listed, [audience.people["ann"].pk, audience.world.other_person.pk],
                actor=audience.world.actor("user"))
        assert not SegmentMember.objects.exists()

    def test_people_cannot_be_added_to_a_dynamic_segment(self, audience):
        segment = create(audience)
        with pytest.raises(ValidationError, match="by its rules"):
            actions.do_add_segment_people(segment, [audience.people["ann"].pk],
                                          actor=audience.world.actor("user"))

    def test_adding_twice_adds_once_and_audits_once(self, audience):
        listed = create(audience, kind="static")
        actor = audience.world.actor("user")
        assert actions.do_add_segment_people(listed, [audience.people["ann"].pk],
                                             actor=actor) == 1
        assert actions.do_add_segment_people(listed, [audience.people["ann"].pk],
                                             actor=actor) == 0
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.SEGMENT_PEOPLE_ADDED).count() == 1

    def test_too_many_people_at_once_is_refused(self, audience):
        listed = create(audience, kind="static")
        with pytest.raises(ValidationError, match="At most"):
            actions.do_add_segment_people(listed, range(1, actions.MAX_PEOPLE_PER_CALL + 2),
                                          actor=audience.world.actor("user"))


@pytest.mark.django_db
class TestSnapshot:
    def test_snapshot_of_a_dynamic_segment_is_a_list_of_its_people_now(self, audience):
        segment = create(audience)  # tag vip: bob and dan
        snapshot = actions.do_snapshot_segment(segment, "VIPs in June",
                                               actor=audience.world.actor("user"))
        assert (snapshot.kind, snapshot.rules, snapshot.name) == ("static", None,
                                                                  "VIPs in June")
        members = SegmentMember.objects.filter(segment=snapshot).values_list("person_id",
                                                                             flat=True)
        assert set(members) == {audience.people["bob"].pk, audience.people["dan"].pk}

    def test_snapshot_does_not_follow_later_changes_to_its_source(self, audience):
        from enclave.people.models import PersonTag

        segment = create(audience)
        snapshot = actions.do_snapshot_segment(segment, "Then",
                                               actor=audience.world.actor("user"))
        PersonTag.objects.filter(person=audience.people["bob"]).delete()
        assert SegmentMember.objects.filter(segment=snapshot,
                                            person=audience.people["bob"]).exists()

    def test_snapshot_of_a_list_copies_its_members(self, audience):
        listed = create(audience, kind="static")
        actor = audience.world.actor("user")
        actions.do_add_segment_people(listed, [audience.people["cat"].pk], actor=actor)
        snapshot = actions.do_snapshot_segment(listed, "Copy", actor=actor)
        assert list(SegmentMember.objects.filter(segment=snapshot)
                    .values_list("person_id", flat=True)) == [audience.people["cat"].pk]

    def test_snapshot_audit_row_names_source_and_count_not_people(self, audience):
        segment = create(audience)
        snapshot = actions.do_snapshot_segment(segment, "Then",
                                               actor=audience.world.actor("user"))
        event = AuditEvent.objects.get(event_type=AuditEventType.SEGMENT_SNAPSHOT_TAKEN)
        assert (event.target_type, event.target_id, event.extra_data) == (
            "segment", str(snapshot.pk), {"source": segment.pk, "people": 2})

    def test_snapshot_records_an_entry_transition_per_person(self, audience):
        from enclave.audience.models import SegmentTransition

        snapshot = actions.do_snapshot_segment(create(audience), "Then",
                                               actor=audience.world.actor("user"))
        assert SegmentTransition.objects.filter(segment=snapshot,
                                                kind="entered").count() == 2

    @pytest.mark.parametrize("role", ["analyst", "viewer"])
    def test_a_role_without_segments_manage_cannot_snapshot(self, audience, role):
        segment = create(audience)
        with pytest.raises(NotAuthorized):
            actions.do_snapshot_segment(segment, "Then", actor=audience.world.actor(role))
        assert Segment.objects.count() == 1

    def test_snapshot_with_a_taken_name_writes_nothing(self, audience):
        segment = create(audience, name="Taken")
        with pytest.raises(ValidationError, match="Another segment has this name"):
            actions.do_snapshot_segment(segment, "Taken",
                                        actor=audience.world.actor("user"))
        assert Segment.objects.count() == 1
        assert not SegmentMember.objects.exists()
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.SEGMENT_SNAPSHOT_TAKEN).exists()

    def test_snapshot_of_a_segment_with_unusable_rules_is_a_clear_error(self, audience):
        segment = create(audience)
        Segment.objects.filter(pk=segment.pk).update(rules={"type": "nonsense"})
        segment.refresh_from_db()
        with pytest.raises(ValidationError, match="cannot be evaluated"):
            actions.do_snapshot_segment(segment, "Then",
                                        actor=audience.world.actor("user"))
        assert Segment.objects.count() == 1

    def test_snapshot_of_another_accounts_segment_is_refused(self, audience):
        theirs = Segment.objects.create(account=audience.world.other, name="Theirs", kind="static")
        with pytest.raises(NotAuthorized):
            actions.do_snapshot_segment(theirs, "Mine", actor=audience.world.actor("user"))
        assert not Segment.objects.filter(name="Mine").exists()

    def test_a_clash_other_than_the_name_is_a_conflict_not_a_crash(self):
        from django.db import IntegrityError

        found = actions._unique_name(IntegrityError("FOREIGN KEY constraint failed"))
        assert isinstance(found, MissingReference)
        assert "at the same time" in " ".join(found.messages)
