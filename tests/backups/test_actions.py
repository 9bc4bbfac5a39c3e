"""Create, verify, restore, erasure re-application and bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from django.db import connection
from django.test import TestCase

from enclave.backups import actions, databases
from enclave.backups.errors import BackupCorrupt, BackupNotFound, BackupRefused
from enclave.backups.models import Backup
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import Member
from enclave.people.actions import do_create_person, do_erase_person
from enclave.people.models import Person
from tests.principals import acting

from .conftest import member_rows

pytestmark = pytest.mark.django_db(transaction=True)


def restored_members(destination: str) -> list[tuple]:
    with databases.open_database(destination) as conn:
        return member_rows(conn)


def restored(destination: str, sql: str, params=()) -> list[tuple]:
    with databases.open_database(destination) as conn, conn.cursor() as cur:
        cur.execute(sql, list(params))
        return [tuple(r) for r in cur.fetchall()]


def as_json(value):
    """A JSON column as read back: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def erasable_world() -> dict:
    """An account with two people, each with a tag, an event and a custom value; one of
    them will be erased. Written through the actions (with audit rows and IPs)."""
    from django.test import RequestFactory

    from enclave.accounts.models import Account, Membership
    from enclave.events.models import Event
    from enclave.people.actions import do_create_person, do_define_field
    from tests.principals import acting

    account = Account.objects.create(name="Acme")
    owner = Member.objects.create(email="owner@acme.example")
    Membership.objects.create(member=owner, account=account, role="owner")
    actor = acting(owner, account)
    do_define_field(account, "plan", "Plan", "text", actor=actor)
    people = {}
    request = RequestFactory().post("/", REMOTE_ADDR="198.51.100.7")  # audit rows' address
    for name in ("kept", "erased"):
        person = do_create_person(account, {
            "email": f"{name}@example.com", "ip": "203.0.113.5", "tags": name,
            "custom.plan": f"{name}-plan"}, actor=actor, request=request)
        Event.objects.create(account=account, person=person, type="track", name="Viewed",
                             properties={"page": f"/{name}"}, occurred_at=person.created_at)
        people[name] = person
    return {"account": account, "actor": actor, **people}


def erase(world) -> None:
    from enclave.people.actions import do_erase_person

    do_erase_person(world["erased"], actor=world["actor"])


def data_file(target, backup_id: str) -> Path:
    return target.root / backup_id / "data.enc"


def destination_exists(destination: str) -> bool:
    if connection.vendor == "sqlite":
        return Path(destination).exists()
    return databases.pg_database_exists(destination)


class TestCreate:
    def test_backup_is_listed_and_audited(self, target, members):
        backup = actions.do_create_backup()
        assert target.list_ids() == [backup.backup_id]
        assert AuditEvent.objects.filter(event_type=AuditEventType.BACKUP_CREATED,
                                         target_id=backup.backup_id).exists()

    def test_stored_data_is_not_plaintext(self, target, members):
        assert "person1@example.com" in str(member_rows())  # what the backup holds
        backup = actions.do_create_backup()
        assert b"person1@example.com" not in data_file(target, backup.backup_id).read_bytes()

    def test_manifest_records_row_counts_and_schema(self, target, members):
        backup = actions.do_create_backup()
        manifest = actions.verify_backup(backup.backup_id)
        assert manifest["row_counts"]["identity_member"] == 3
        assert manifest["schema_version"]["backups"] == "0003_tombstone_subjects"
        assert manifest["environment"] == "test"

    def test_backup_key_is_a_private_file_outside_the_database(self, target, members,
                                                               key_dir):
        backup = actions.do_create_backup()
        path = key_dir / f"{backup.backup_id}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
        assert json.loads(path.read_text())["context"] == {
            "purpose": "backup", "version": backup.backup_id,
            "backup_id": backup.backup_id, "environment": "test"}
        assert "backups_backupkey" not in connection.introspection.table_names()


class TestRestore:
    def test_round_trip_restores_identical_data(self, target, members, destination):
        before = member_rows()
        backup = actions.do_create_backup()
        Member.objects.create(email="later@example.com")
        actions.do_restore_backup(backup.backup_id, to=destination)
        assert restored_members(destination) == before

    def test_existing_destination_is_refused(self, target, members, destination):
        backup = actions.do_create_backup()
        actions.do_restore_backup(backup.backup_id, to=destination)
        with pytest.raises(BackupRefused, match="already exists"):
            actions.do_restore_backup(backup.backup_id, to=destination)

    def test_erasure_is_reapplied_after_restore(self, target, members, destination):
        backup = actions.do_create_backup()
        actions.do_record_erasure("member", members[1].pk, account_id=None)
        actions.do_restore_backup(backup.backup_id, to=destination)
        rows = {r[0]: r for r in restored_members(destination)}
        assert rows[members[1].pk][1] == f"erased-{members[1].pk}@erased.invalid"
        assert int(rows[members[1].pk][3]) == 0  # is_active: False (PostgreSQL) or 0 (SQLite)
        assert rows[members[0].pk][1] == "person0@example.com"

    def test_erased_person_stays_erased_after_restore(self, target, destination):
        world = erasable_world()
        backup = actions.do_create_backup()
        erase(world)
        actions.do_restore_backup(backup.backup_id, to=destination)
        assert restored(destination, "SELECT email FROM people_person ORDER BY id") == [
            ("kept@example.com",)]

    def test_restore_of_a_backup_taken_before_erasing_a_person_with_events_works(
            self, target, destination):
        world = erasable_world()
        backup = actions.do_create_backup()
        erase(world)
        result = actions.do_restore_backup(backup.backup_id, to=destination)
        assert result["erasures_reapplied"] > 0
        erased_id = world["erased"].pk
        for sql in ("SELECT id FROM people_person WHERE id = %s",
                    "SELECT id FROM events_event WHERE person_id = %s",
                    "SELECT id FROM people_persontag WHERE person_id = %s"):
            assert restored(destination, sql, [erased_id]) == [], sql
        assert restored(destination, "SELECT COUNT(*) FROM events_event") == [(1,)]  # kept's
        scrubbed = restored(destination, "SELECT extra_data, scrubbed FROM core_auditevent "
                                         "WHERE target_type = 'person' AND target_id = %s "
                                         "AND event_type = %s",
                            [str(erased_id), int(AuditEventType.PERSON_CREATED)])
        assert [(as_json(extra), bool(flag)) for extra, flag in scrubbed] == [({}, True)]

    def test_erasure_survives_losing_the_tombstone_table(self, target, destination):
        """The journal in the secrets directory carries the erasure when the database
        that held the tombstone rows is gone (restore onto a fresh database)."""
        from enclave.backups.models import ErasureTombstone

        world = erasable_world()
        backup = actions.do_create_backup()
        erase(world)
        ErasureTombstone.objects.all().delete()  # as if the live database were lost
        actions.do_restore_backup(backup.backup_id, to=destination)
        assert restored(destination, "SELECT email FROM people_person ORDER BY id") == [
            ("kept@example.com",)]

    def test_a_later_person_given_an_erased_persons_id_is_not_erased_by_a_restore(
            self, target, destination):
        """Ids are reused once a restore resets a sequence: the tombstone names the erased
        row (its row_id), so a newer person holding the same id survives every restore."""
        from enclave.events.models import Event
        from enclave.people.models import Person

        world = erasable_world()
        erased_id = world["erased"].pk
        erase(world)
        newcomer = Person.objects.create(pk=erased_id, account=world["account"],
                                         email="newcomer@example.com")
        Event.objects.create(account=world["account"], person=newcomer, type="track",
                             name="Joined", occurred_at=newcomer.created_at)
        backup = actions.do_create_backup()
        actions.do_restore_backup(backup.backup_id, to=destination)
        assert restored(destination, "SELECT email FROM people_person WHERE id = %s",
                        [erased_id]) == [("newcomer@example.com",)]
        assert restored(destination, "SELECT name FROM events_event WHERE person_id = %s",
                        [erased_id]) == [("Joined",)]

    def test_anonymised_restore_masks_event_properties_and_stored_addresses(
            self, target, destination, monkeypatch):
        world = erasable_world()
        monkeypatch.setattr(actions, "_environment", lambda: "production")
        backup = actions.do_create_backup()
        monkeypatch.undo()
        actions.do_restore_backup(backup.backup_id, to=destination, anonymize=True)
        properties = restored(destination, "SELECT properties FROM events_event")
        assert [as_json(p) for (p,) in properties] == [{}, {}]
        assert restored(destination, "SELECT ip FROM people_person WHERE ip IS NOT NULL") == []
        assert restored(destination, "SELECT ip FROM core_auditevent WHERE ip IS NOT NULL") == []
        emails = restored(destination, "SELECT id, email FROM people_person ORDER BY id")
        assert emails == [(p.pk, f"masked-{p.pk}@masked.invalid")
                          for p in (world["kept"], world["erased"])]

    def test_production_backup_into_test_needs_anonymize(self, target, members, destination,
                                                         monkeypatch):
        # The keyring binds keys to the environment, so "made in production" is simulated
        # by the label the backup records in its (authenticated) manifest.
        monkeypatch.setattr(actions, "_environment", lambda: "production")
        backup = actions.do_create_backup()
        monkeypatch.undo()
        with pytest.raises(BackupRefused, match=r"from production.*--anonymize"):
            actions.do_restore_backup(backup.backup_id, to=destination)
        assert not destination_exists(destination)

    def test_anonymize_masks_personal_data(self, target, members, destination, monkeypatch):
        monkeypatch.setattr(actions, "_environment", lambda: "production")
        backup = actions.do_create_backup()
        monkeypatch.undo()
        actions.do_restore_backup(backup.backup_id, to=destination, anonymize=True)
        emails = [r[1] for r in restored_members(destination)]
        assert emails == [f"masked-{m.pk}@masked.invalid" for m in members]

    def test_backup_from_other_environment_is_refused(self, target, members, destination,
                                                    monkeypatch):
        monkeypatch.setattr(actions, "_environment", lambda: "dev")
        backup = actions.do_create_backup()
        with pytest.raises(BackupRefused, match="from dev, this deployment is test"):
            actions.do_restore_backup(backup.backup_id, to=destination)
        assert not destination_exists(destination)


class TestDatabaseLoss:
    def test_restore_works_on_a_fresh_database(self, target, members, destination):
        from django.core.management import call_command

        from enclave.keys import keyring
        from enclave.keys.models import DataKey

        before = member_rows()
        backup = actions.do_create_backup()
        old_keys = {bytes(w) for w in DataKey.objects.values_list("wrapped", flat=True)}
        # The live database is lost: every row goes, the keyring's data keys with it (the
        # post-migrate hook makes new ones). Left: the secrets directory and the target.
        call_command("flush", interactive=False, verbosity=0)
        keyring.clear_cache()
        assert not old_keys & {bytes(w) for w in DataKey.objects.values_list("wrapped",
                                                                              flat=True)}
        assert not Backup.objects.exists()
        assert member_rows() == []
        actions.do_restore_backup(backup.backup_id, to=destination)
        assert restored_members(destination) == before


class TestBadInput:
    def test_unknown_id_is_not_found(self, target):
        with pytest.raises(BackupNotFound, match="no complete backup"):
            actions.verify_backup("20260101T000000000000Z-abcdef")

    def test_path_like_id_is_not_found(self, target):
        with pytest.raises(BackupNotFound):
            actions.verify_backup("../../etc")

    def test_flipped_byte_in_chunk_is_refused_and_nothing_written(self, target, members,
                                                                  destination):
        backup = actions.do_create_backup()
        path = data_file(target, backup.backup_id)
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        path.write_bytes(bytes(blob))
        with pytest.raises(BackupCorrupt, match=r"chunk \d+ failed authentication"):
            actions.do_restore_backup(backup.backup_id, to=destination)
        assert not destination_exists(destination)

    def test_altered_manifest_is_refused(self, target, members, destination):
        backup = actions.do_create_backup()
        path = target.root / backup.backup_id / "manifest.json"
        path.write_bytes(path.read_bytes().replace(b'"test"', b'"dev"'))
        with pytest.raises(BackupCorrupt, match="manifest failed authentication"):
            actions.do_restore_backup(backup.backup_id, to=destination)
        assert not destination_exists(destination)

    def test_truncated_file_is_refused(self, target, members, destination):
        backup = actions.do_create_backup()
        path = data_file(target, backup.backup_id)
        path.write_bytes(path.read_bytes()[:-100])
        with pytest.raises(BackupCorrupt, match="truncated"):
            actions.do_restore_backup(backup.backup_id, to=destination)
        assert not destination_exists(destination)

    def test_wrong_data_key_is_refused(self, target, members, key_dir):
        first, second = actions.do_create_backup(), actions.do_create_backup()
        first_file = key_dir / f"{first.backup_id}.key"
        document = json.loads(first_file.read_text())
        document["wrapped_key"] = json.loads(
            (key_dir / f"{second.backup_id}.key").read_text())["wrapped_key"]
        first_file.write_text(json.dumps(document))
        with pytest.raises(BackupCorrupt, match="data key cannot be unwrapped"):
            actions.verify_backup(first.backup_id)

    def test_destroyed_key_makes_backup_unreadable(self, target, members, key_dir):
        backup = actions.do_create_backup()
        (key_dir / f"{backup.backup_id}.key").unlink()
        with pytest.raises(BackupRefused, match="no data key"):
            actions.verify_backup(backup.backup_id)

    def test_key_file_open_to_group_is_refused(self, target, members, key_dir):
        backup = actions.do_create_backup()
        (key_dir / f"{backup.backup_id}.key").chmod(0o640)
        with pytest.raises(BackupRefused, match="open to group or others; run chmod 600"):
            actions.verify_backup(backup.backup_id)

    def test_key_file_of_another_backup_is_refused(self, target, members, key_dir):
        first, second = actions.do_create_backup(), actions.do_create_backup()
        (key_dir / f"{second.backup_id}.key").replace(key_dir / f"{first.backup_id}.key")
        with pytest.raises(BackupCorrupt, match="belongs to backup"):
            actions.verify_backup(first.backup_id)

    def test_backup_inside_transaction_never_hangs(self, target, members):
        from django.db import transaction

        with transaction.atomic():
            if connection.vendor == "sqlite":
                # SQLite's online backup would wait forever on our own write transaction.
                with pytest.raises(BackupRefused, match="open transaction"):
                    actions.do_create_backup()
                expected = 0
            else:
                actions.do_create_backup()  # pg_dump reads committed data in its own session
                expected = 1
        assert len(target.list_ids()) == expected

    def test_restore_needs_destination_or_replace(self, target, members):
        backup = actions.do_create_backup()
        with pytest.raises(BackupRefused, match="exactly one"):
            actions.do_restore_backup(backup.backup_id)

    def test_failed_restore_leaves_live_database_untouched(self, target, members,
                                                          destination):
        backup = actions.do_create_backup()
        path = data_file(target, backup.backup_id)
        path.write_bytes(path.read_bytes()[:-100])
        before = member_rows()
        with pytest.raises(BackupCorrupt):
            actions.do_restore_backup(backup.backup_id, replace=True)
        assert member_rows() == before


class TestReplace:
    def test_replace_restores_live_and_keeps_backup_keys(self, target, members):
        before = member_rows()
        backup = actions.do_create_backup()
        Member.objects.create(email="after-backup@example.com")
        result = actions.do_restore_backup(backup.backup_id, replace=True)
        if connection.vendor == "postgresql":
            databases.drop_pg_database(result["previous_database"])
        assert member_rows() == before
        # The live catalog and keys survived: the backup still verifies.
        assert actions.verify_backup(backup.backup_id)["id"] == backup.backup_id
        assert Backup.objects.filter(backup_id=backup.backup_id).exists()

    def test_backups_and_erasures_still_work_after_a_replace(self, target):
        """The kept tables (catalog, tombstones) are copied into the restored database
        with their ids; the next backup and the next erasure must not collide with them."""
        world = erasable_world()
        with TestCase.captureOnCommitCallbacks(execute=True):
            erase(world)
        first = actions.do_create_backup()
        actions.do_create_backup()
        result = actions.do_restore_backup(first.backup_id, replace=True)
        if connection.vendor == "postgresql":
            databases.drop_pg_database(result["previous_database"])
        assert actions.do_create_backup().backup_id
        actor = acting(world["actor"].member, world["account"].pk)
        person = do_create_person(world["account"], {"email": "next@example.com"},
                                  actor=actor)
        with TestCase.captureOnCommitCallbacks(execute=True):
            do_erase_person(person, actor=actor)
        assert not Person.objects.filter(pk=person.pk).exists()


class TestErasedIdsAfterRestore:
    """A restored database never hands an erased subject's id to a new row: tombstones
    name subjects by id, so a reused id would make every later restore erase an innocent
    person (or member)."""

    def _account_with_person(self):
        from enclave.accounts.models import Account, Membership

        account = Account.objects.create(name="Acme")
        owner = Member.objects.create(email="owner@acme.example")
        Membership.objects.create(member=owner, account=account, role="owner")
        actor = acting(owner, account)
        do_create_person(account, {"email": "kept@example.com"}, actor=actor)
        return account, actor

    def test_a_person_added_after_restoring_an_older_backup_survives_the_next_restore(
            self, target, destination):
        account, actor = self._account_with_person()
        before_erased_existed = actions.do_create_backup()
        gone = do_create_person(account, {"email": "gone@example.com"}, actor=actor)
        with TestCase.captureOnCommitCallbacks(execute=True):
            do_erase_person(gone, actor=actor)
        result = actions.do_restore_backup(before_erased_existed.backup_id, replace=True)
        if connection.vendor == "postgresql":
            databases.drop_pg_database(result["previous_database"])
        actor = acting(actor.member, account.pk)
        do_create_person(account, {"email": "innocent@example.com"}, actor=actor)
        later = actions.do_create_backup()
        actions.do_restore_backup(later.backup_id, to=destination)
        assert restored(destination, "SELECT email FROM people_person ORDER BY email") == [
            ("innocent@example.com",), ("kept@example.com",)]

    def test_a_fresh_restore_continues_ids_after_every_tombstoned_one(self, target,
                                                                       destination):
        account, _ = self._account_with_person()
        backup = actions.do_create_backup()
        actions.do_record_erasure("person", 10_000, account_id=account.pk)
        actions.do_restore_backup(backup.backup_id, to=destination)
        with databases.open_database(destination) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO people_person (account_id, email, first_name, last_name,"
                        " phone, company, address, country, external_id, consent, custom,"
                        " row_id, created_at, updated_at) VALUES (%s, 'new@example.com',"
                        " '', '', '', '', '', '', '', 'unknown', '{}', %s, %s, %s)",
                        [account.pk, "0" * 32, "2026-01-01", "2026-01-01"])
            cur.execute("SELECT id FROM people_person WHERE email = 'new@example.com'")
            assert cur.fetchone()[0] > 10_000
