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


TRIGGERS = {
    AuditEventType.SEGMENT_CREATED: _create,
    AuditEventType.SEGMENT_CHANGED: _change,
    AuditEventType.SEGMENT_DELETED: _delete,
    AuditEventType.SEGMENT_PEOPLE_ADDED: _add,
    AuditEventType.SEGMENT_PEOPLE_REMOVED: _remove,
}
