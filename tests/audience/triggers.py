"""One trigger per audience audit type (1000–1099), for tests/core/test_audit.py."""

from __future__ import annotations

from enclave.audience import actions
from enclave.core.models import AuditEventType
from enclave.people.models import Person
from tests.people.world import World


def _list(world: World):
    return actions.do_create_segment(world.account, "List", "static",
                                     actor=world.actor("owner"))


def _create(f):
    _list(World())


def _change(f):
    world = World()
    actions.do_change_segment(_list(world), name="Renamed", actor=world.actor("owner"))


def _delete(f):
    world = World()
    actions.do_delete_segment(_list(world), actor=world.actor("owner"))


def _add(f):
    world = World()
    actions.do_add_segment_people(_list(world), [world.person.pk], actor=world.actor("owner"))


def _remove(f):
    world = World()
    listed = _list(world)
    person = Person.objects.get(pk=world.person.pk)
    actions.do_add_segment_people(listed, [person.pk], actor=world.actor("owner"))
    actions.do_remove_segment_people(listed, [person.pk], actor=world.actor("owner"))


def _snapshot(f):
    world = World()
    actions.do_snapshot_segment(_list(world), "Copy", actor=world.actor("owner"))


def _topic(world: World, double_opt_in=False):
    from enclave.audience.subscriptions import do_create_topic

    return do_create_topic(world.account, "news", "News", consent_text="Monthly news.",
                           double_opt_in=double_opt_in, actor=world.actor("owner"))


def _topic_created(f):
    _topic(World())


def _topic_changed(f):
    from enclave.audience.subscriptions import do_change_topic

    world = World()
    do_change_topic(_topic(world), consent_text="Weekly news.", actor=world.actor("owner"))


def _subscribed(f):
    from enclave.audience.subscriptions import do_change_subscription

    world = World()
    do_change_subscription(world.person, _topic(world), True, method="app",
                           actor=world.actor("owner"))


def _confirmed(f):
    from enclave.audience.subscriptions import do_change_subscription, do_confirm_subscription

    world = World()
    topic = _topic(world, double_opt_in=True)
    do_change_subscription(world.person, topic, True, method="app", actor=world.actor("owner"))
    do_confirm_subscription(world.person, topic)


def _erasure_requested(f):
    from enclave.audience.subscriptions import do_request_erasure

    do_request_erasure(World().person)


def _suppressed(f):
    from enclave.audience.subscriptions import do_suppress_address

    world = World()
    do_suppress_address(world.account, "gone@example.com", actor=world.actor("owner"))


def _unsuppressed(f):
    from enclave.audience.subscriptions import do_suppress_address, do_unsuppress_address

    world = World()
    do_suppress_address(world.account, "gone@example.com", actor=world.actor("owner"))
    do_unsuppress_address(world.account, "gone@example.com", actor=world.actor("owner"))


TRIGGERS = {
    AuditEventType.TOPIC_CREATED: _topic_created,
    AuditEventType.TOPIC_CHANGED: _topic_changed,
    AuditEventType.SUBSCRIPTION_CHANGED: _subscribed,
    AuditEventType.SUBSCRIPTION_CONFIRMED: _confirmed,
    AuditEventType.ERASURE_REQUESTED: _erasure_requested,
    AuditEventType.ADDRESS_SUPPRESSED: _suppressed,
    AuditEventType.ADDRESS_UNSUPPRESSED: _unsuppressed,
    AuditEventType.SEGMENT_CREATED: _create,
    AuditEventType.SEGMENT_CHANGED: _change,
    AuditEventType.SEGMENT_DELETED: _delete,
    AuditEventType.SEGMENT_PEOPLE_ADDED: _add,
    AuditEventType.SEGMENT_PEOPLE_REMOVED: _remove,
    AuditEventType.SEGMENT_SNAPSHOT_TAKEN: _snapshot,
}
