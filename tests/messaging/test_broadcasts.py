"""Broadcasts up to the outbox: who is queued (subscribers of its topics, narrowed by its
segments — never the pending, the unsubscribed, the archived or another account's),
that queuing is all or nothing and happens once, and that erasure leaves no outbox row."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enclave.access.principal import NotAuthorized
from enclave.audience.actions import do_add_segment_people, do_create_segment
from enclave.audience.subscriptions import do_change_subscription, do_create_topic
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.validation import MissingReference
from enclave.messaging import actions, dkim
from enclave.messaging.models import Broadcast, DkimKey, OutboxMessage
from enclave.people.actions import do_define_field, do_erase_person
from enclave.people.models import Person
from tests.people.world import World


class Setup:
    """A template, a verified sender domain, a topic "news" and people in given states."""

    def __init__(self, world: World, local_dns) -> None:
        owner = world.actor("owner")
        self.world, self.owner = world, owner
        self.template = actions.do_create_template(world.account, "T", "html", "Hi",
                                                   "<p>Hi {{ person.first_name }}</p>",
                                                   actor=owner)
        self.sender = actions.do_add_sender_domain(world.account, "news.acme.example",
                                                   actor=owner)
        key = DkimKey.objects.get(domain=self.sender)
        local_dns.publish(dkim.record_name(key.selector, "news.acme.example"),
                          dkim.txt_value(key.public_key))
        self.sender = actions.do_check_sender_domain(self.sender, actor=owner)
        self.topic = do_create_topic(world.account, "news", "News", consent_text="News.",
                                     double_opt_in=False, actor=owner)

    def person(self, email: str, *, subscribed: bool | None = True, **fields) -> Person:
        person = Person.objects.create(account=self.world.account, email=email, **fields)
        if subscribed is not None:
            do_change_subscription(person, self.topic, subscribed, method="app",
                                   actor=self.owner)
        return person

    def broadcast(self, *, segments=(), topics=None, name="June news") -> Broadcast:
        return actions.do_create_broadcast(
            self.world.account, name, template=self.template, sender=self.sender,
            from_local="news", from_name="Acme News",
            topics=[self.topic.pk] if topics is None else topics, segments=segments,
            actor=self.owner)

    def queue(self, broadcast) -> Broadcast:
        return actions.do_queue_broadcast(broadcast, actor=self.owner)


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return Setup(world, local_dns)


def queued(broadcast) -> set[str]:
    return set(OutboxMessage.objects.filter(broadcast=broadcast)
               .values_list("person__email", flat=True))


@pytest.mark.django_db
class TestRecipients:
    def test_only_subscribers_of_its_topics_are_queued(self, setup):
        setup.person("in@example.com")
        setup.person("out@example.com", subscribed=False)
        setup.person("never@example.com", subscribed=None)
        broadcast = setup.queue(setup.broadcast())
        assert queued(broadcast) == {"in@example.com"}
        assert broadcast.recipients == 1

    def test_people_waiting_to_confirm_are_not_queued(self, setup):
        topic = do_create_topic(setup.world.account, "offers", "Offers", consent_text="O.",
                                double_opt_in=True, actor=setup.owner)
        person = setup.person("pending@example.com", subscribed=None)
        do_change_subscription(person, topic, True, method="app", actor=setup.owner)
        assert queued(setup.queue(setup.broadcast(topics=[topic.pk]))) == set()

    def test_archived_people_and_people_without_an_address_are_not_queued(self, setup):
        from enclave.core import clock

        setup.person("archived@example.com", archived_at=clock.now())
        setup.person("", phone="+44 20 7946 0999")
        assert queued(setup.queue(setup.broadcast())) == set()

    def test_segments_narrow_the_subscribers(self, setup):
        listed = setup.person("listed@example.com")
        setup.person("unlisted@example.com")
        segment = do_create_segment(setup.world.account, "VIP", "static", actor=setup.owner)
        do_add_segment_people(segment, [listed.pk], actor=setup.owner)
        broadcast = setup.queue(setup.broadcast(segments=[segment.pk]))
        assert queued(broadcast) == {"listed@example.com"}

    def test_a_dynamic_segment_is_evaluated_when_queued(self, setup):
        setup.person("gb@example.com", country="GB")
        setup.person("fr@example.com", country="FR")
        segment = do_create_segment(
            setup.world.account, "GB", "dynamic",
            {"type": "field", "field": "country", "op": "equals", "value": "GB"},
            actor=setup.owner)
        assert queued(setup.queue(setup.broadcast(segments=[segment.pk]))) == {
            "gb@example.com"}

    def test_several_segments_queue_everyone_in_any(self, setup):
        for key in ("plan", "region"):
            do_define_field(setup.world.account, key, key.title(), "text", actor=setup.owner)
        listed = setup.person("listed@example.com")
        setup.person("pro@example.com", custom={"plan": "pro"})
        setup.person("north@example.com", custom={"plan": "free", "region": "north"})
        setup.person("free@example.com", custom={"plan": "free", "region": "south"})
        static = do_create_segment(setup.world.account, "VIP", "static", actor=setup.owner)
        do_add_segment_people(static, [listed.pk], actor=setup.owner)
        dynamic = [do_create_segment(
            setup.world.account, name, "dynamic",
            {"type": "field", "field": f"custom.{key}", "op": "equals", "value": value},
            actor=setup.owner) for name, key, value in (("Pro", "plan", "pro"),
                                                         ("North", "region", "north"))]
        broadcast = setup.queue(setup.broadcast(
            segments=[static.pk, *(segment.pk for segment in dynamic)]))
        assert queued(broadcast) == {"listed@example.com", "pro@example.com",
                                     "north@example.com"}

    def test_a_person_in_two_topics_is_queued_once(self, setup):
        other = do_create_topic(setup.world.account, "offers", "Offers", consent_text="O.",
                                double_opt_in=False, actor=setup.owner)
        person = setup.person("both@example.com")
        do_change_subscription(person, other, True, method="app", actor=setup.owner)
        broadcast = setup.queue(setup.broadcast(topics=[setup.topic.pk, other.pk]))
        assert OutboxMessage.objects.filter(broadcast=broadcast).count() == 1

    def test_another_accounts_subscribers_are_never_queued(self, setup, world):
        theirs = do_create_topic(world.other, "news", "News", consent_text="N.",
                                 double_opt_in=False, actor=world.other_actor())
        do_change_subscription(world.other_person, theirs, True, method="app",
                               actor=world.other_actor())
        setup.person("mine@example.com")
        assert queued(setup.queue(setup.broadcast())) == {"mine@example.com"}


@pytest.mark.django_db
class TestQueue:
    def test_queuing_is_audited_with_a_count_never_who(self, setup):
        setup.person("in@example.com")
        broadcast = setup.queue(setup.broadcast())
        event = AuditEvent.objects.get(event_type=AuditEventType.BROADCAST_QUEUED)
        assert (event.target_id, event.extra_data) == (str(broadcast.pk), {"recipients": 1})

    def test_a_broadcast_is_queued_once(self, setup):
        setup.person("in@example.com")
        broadcast = setup.queue(setup.broadcast())
        with pytest.raises(MissingReference):
            setup.queue(broadcast)
        assert OutboxMessage.objects.count() == 1

    def test_an_unverified_sender_domain_queues_nothing(self, setup, world):
        setup.person("in@example.com")
        unverified = actions.do_add_sender_domain(world.account, "other.acme.example",
                                                  actor=setup.owner)
        broadcast = actions.do_create_broadcast(
            world.account, "B", template=setup.template, sender=unverified,
            from_local="news", topics=[setup.topic.pk], actor=setup.owner)
        with pytest.raises(MissingReference) as caught:
            setup.queue(broadcast)
        assert "not verified" in str(caught.value.message_dict["sender"])
        assert not OutboxMessage.objects.exists()
        assert Broadcast.objects.get(pk=broadcast.pk).state == "draft"

    def test_cancelling_stops_everything_still_queued(self, setup):
        setup.person("a@example.com")
        setup.person("b@example.com")
        broadcast = actions.do_cancel_broadcast(setup.queue(setup.broadcast()),
                                                actor=setup.owner)
        assert broadcast.state == "cancelled"
        assert set(OutboxMessage.objects.values_list("state", flat=True)) == {"cancelled"}

    def test_erasing_a_person_removes_their_outbox_rows(self, setup, world):
        person = setup.person("gone@example.com")
        setup.queue(setup.broadcast())
        do_erase_person(person, actor=world.actor("owner"))
        assert not OutboxMessage.objects.exists()

    def test_only_a_draft_can_be_deleted(self, setup):
        broadcast = setup.queue(setup.broadcast())
        with pytest.raises(MissingReference):
            actions.do_delete_broadcast(broadcast, actor=setup.owner)
        draft = setup.broadcast(name="Draft")
        actions.do_delete_broadcast(draft, actor=setup.owner)
        assert list(Broadcast.objects.values_list("name", flat=True)) == ["June news"]


@pytest.mark.django_db
class TestCreate:
    def test_a_broadcast_needs_a_topic(self, setup):
        with pytest.raises(ValidationError) as caught:
            setup.broadcast(topics=[])
        assert list(caught.value.message_dict) == ["topics"]

    def test_another_accounts_topic_looks_missing(self, setup, world):
        theirs = do_create_topic(world.other, "news", "News", consent_text="N.",
                                 actor=world.other_actor())
        with pytest.raises(MissingReference) as caught:
            setup.broadcast(topics=[theirs.pk])
        assert caught.value.message_dict == {"topics": [f"No such topic: {theirs.pk}."]}

    def test_another_accounts_template_looks_missing(self, setup, world):
        theirs = actions.do_create_template(world.other, "T", "html", "Hi", "<p>x</p>",
                                            actor=world.other_actor())
        with pytest.raises(MissingReference):
            actions.do_create_broadcast(world.account, "B", template=theirs,
                                        sender=setup.sender, from_local="news",
                                        topics=[setup.topic.pk], actor=setup.owner)

    @pytest.mark.parametrize("local", ["", "news@x", "a b", ".news", "x" * 65, "new\r\ns"])
    def test_a_bad_from_address_is_refused(self, setup, world, local):
        with pytest.raises(ValidationError) as caught:
            actions.do_create_broadcast(world.account, "B", template=setup.template,
                                        sender=setup.sender, from_local=local,
                                        topics=[setup.topic.pk], actor=setup.owner)
        assert list(caught.value.message_dict) == ["from_local"]

    def test_a_from_name_on_two_lines_is_refused(self, setup, world):
        with pytest.raises(ValidationError):
            actions.do_create_broadcast(world.account, "B", template=setup.template,
                                        sender=setup.sender, from_local="news",
                                        from_name="Acme\r\nBcc: all@example.com",
                                        topics=[setup.topic.pk], actor=setup.owner)

    @pytest.mark.parametrize("name", ["CEO <ceo@bank.example>", "ceo@bank.example",
                                      "Acme <", "=?utf-8?q?x?="])
    def test_a_from_name_that_reads_as_an_address_is_refused(self, setup, world, name):
        from enclave.messaging.actions.broadcasts import FROM_NAME_RULE

        with pytest.raises(ValidationError) as caught:
            actions.do_create_broadcast(world.account, "B", template=setup.template,
                                        sender=setup.sender, from_local="news",
                                        from_name=name, topics=[setup.topic.pk],
                                        actor=setup.owner)
        assert caught.value.message_dict == {"from_name": [FROM_NAME_RULE]}

    def test_an_analyst_cannot_draft_a_broadcast(self, setup, world):
        with pytest.raises(NotAuthorized):
            actions.do_create_broadcast(world.account, "B", template=setup.template,
                                        sender=setup.sender, from_local="news",
                                        topics=[setup.topic.pk],
                                        actor=world.actor("analyst"))
