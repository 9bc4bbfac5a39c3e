"""One trigger per team/audit (320–399) and people (400–499) event type, for
tests/core/test_audit.py."""

from __future__ import annotations

from django.test import TestCase

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
    plan = importer.plan_import(b"email\nnew@example.com\n", world.account.pk)
    actions.do_import_people(world.account, plan, actor=world.members["user"])


def _audit_export(f):
    World().client("owner").get("/app/audit/export.csv")


TRIGGERS = {
    AuditEventType.ROLE_CHANGED: _team(lambda w: team.do_change_role(
        w.membership("user"), "analyst", actor=w.members["owner"])),
    AuditEventType.MEMBER_REMOVED: _team(lambda w: team.do_remove_member(
        w.membership("user"), actor=w.members["owner"])),
    AuditEventType.OWNERSHIP_TRANSFERRED: _team(lambda w: team.do_transfer_ownership(
        w.membership("admin"), actor=w.members["owner"])),
    AuditEventType.CUSTOM_ROLE_SAVED: _team(lambda w: team.do_save_custom_role(
        w.account, "Readers", ["people.read"], actor=w.members["owner"])),
    AuditEventType.AUDIT_LOG_EXPORTED: _audit_export,
    AuditEventType.PERSON_CREATED: _team(lambda w: actions.do_create_person(
        w.account, {"email": "a@example.com"}, actor=w.members["user"])),
    AuditEventType.PERSON_UPDATED: _team(lambda w: actions.do_update_person(
        w.person, {"company": "Initech"}, actor=w.members["user"])),
    AuditEventType.PERSON_ARCHIVED: _team(lambda w: actions.do_archive_person(
        w.person, actor=w.members["user"])),
    AuditEventType.PERSON_ERASED: _team(lambda w: actions.do_erase_person(
        w.person, actor=w.members["owner"])),
    AuditEventType.PERSON_VALUE_REVEALED: _team(lambda w: actions.do_reveal_value(
        w.person, "email", "support ticket", actor=w.members["analyst"])),
    AuditEventType.PEOPLE_EXPORTED: _people_export,
    AuditEventType.PEOPLE_IMPORTED: _people_import,
    AuditEventType.FIELD_DEFINED: _team(lambda w: actions.do_define_field(
        w.account, "tier", "Tier", "text", actor=w.members["owner"])),
}
