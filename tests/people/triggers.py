"""One trigger per team/audit (320–399) and people (400–499) event type, for
tests/core/test_audit.py."""

from __future__ import annotations

from django.test import TestCase

from enclave.access.permissions import ALL
from enclave.accounts import actions as team
from enclave.core.models import AuditEventType
from enclave.people import actions
from tests.people.world import World


def _team(call):
    def run(f):
        world = World()
        with TestCase.captureOnCommitCallbacks(execute=True):
            call(world)
    return run


def _people_export(f):
    World().client("owner").get("/app/people/export.csv")


def _people_import(f):
    from enclave.people import importer

    world = World()
    plan = importer.plan_import(b"email\nnew@example.com\n", world.account.pk, ALL)
    actions.do_import_people(world.account, plan, actor=world.actor("user"))


def _people_import_staged(f):
    from enclave.people import importer

    world = World()
    data = "email\nnew@example.com\n"
    plan = importer.plan_import(data.encode(), world.account.pk, ALL)
    actions.do_stage_import(world.account, data, plan, actor=world.actor("user"))
    return world


def _people_import_discarded(f):
    world = _people_import_staged(f)
    actions.do_discard_import(world.account, actor=world.actor("user"))


def _audit_export(f):
    World().client("owner").get("/app/audit/export.csv")


TRIGGERS = {
    AuditEventType.ROLE_CHANGED: _team(lambda w: team.do_change_role(
        w.membership("user"), "analyst", actor=w.actor("owner"))),
    AuditEventType.MEMBER_REMOVED: _team(lambda w: team.do_remove_member(
        w.membership("user"), actor=w.actor("owner"))),
    AuditEventType.OWNERSHIP_TRANSFERRED: _team(lambda w: team.do_transfer_ownership(
        w.membership("admin"), actor=w.actor("owner"))),
    AuditEventType.CUSTOM_ROLE_SAVED: _team(lambda w: team.do_save_custom_role(
        w.account, "Readers", ["people.read"], actor=w.actor("owner"))),
    AuditEventType.AUDIT_LOG_EXPORTED: _audit_export,
    AuditEventType.PERSON_CREATED: _team(lambda w: actions.do_create_person(
        w.account, {"email": "a@example.com"}, actor=w.actor("user"))),
    AuditEventType.PERSON_UPDATED: _team(lambda w: actions.do_update_person(
        w.person, {"company": "Initech"}, actor=w.actor("user"))),
    AuditEventType.PERSON_ARCHIVED: _team(lambda w: actions.do_archive_person(
        w.person, actor=w.actor("user"))),
    AuditEventType.PERSON_ERASED: _team(lambda w: actions.do_erase_person(
        w.person, actor=w.actor("owner"))),
    AuditEventType.PERSON_VALUE_REVEALED: _team(lambda w: actions.do_reveal_value(
        w.person, "email", "support ticket", actor=w.actor("analyst"))),
    AuditEventType.PEOPLE_EXPORTED: _people_export,
    AuditEventType.PEOPLE_IMPORTED: _people_import,
    AuditEventType.PEOPLE_IMPORT_STAGED: _people_import_staged,
    AuditEventType.PEOPLE_IMPORT_DISCARDED: _people_import_discarded,
    AuditEventType.FIELD_DEFINED: _team(lambda w: actions.do_define_field(
        w.account, "tier", "Tier", "text", actor=w.actor("owner"))),
}
