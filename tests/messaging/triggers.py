"""One trigger per messaging audit type (1100–1199), for tests/core/test_audit.py."""

from __future__ import annotations

from enclave.core.models import AuditEventType
from enclave.messaging import actions
from tests.people.world import World


def _template(world: World):
    return actions.do_create_template(world.account, "Welcome", "html", "Hi",
                                      "<p>Hello {{ person.first_name }}</p>",
                                      actor=world.actor("owner"))


def _created(f):
    _template(World())


def _changed(f):
    world = World()
    actions.do_change_template(_template(world), subject="Hello", actor=world.actor("owner"))


def _deleted(f):
    world = World()
    actions.do_delete_template(_template(world), actor=world.actor("owner"))


TRIGGERS = {
    AuditEventType.TEMPLATE_CREATED: _created,
    AuditEventType.TEMPLATE_CHANGED: _changed,
    AuditEventType.TEMPLATE_DELETED: _deleted,
}
