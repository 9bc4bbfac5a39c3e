"""Create, verify, restore, erasure re-application and bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from django.db import connection

from enclave.backups import actions, databases
from enclave.backups.errors import BackupCorrupt, BackupNotFound, BackupRefused
from enclave.backups.models import Backup
from enclave.core.models import AuditEvent, AuditEventType
from enclave.identity.models import Member

from .conftest import member_rows

pytestmark = pytest.mark.django_db(transaction=True)


def restored_members(destination: str) -> list[tuple]:
    with databases.open_database(destination) as conn:
        return member_rows(conn)


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
        backup = actions.do_create_backup()
        assert b"person1@example.com" not in data_file(target, backup.backup_id).read_bytes()

    def test_manifest_records_row_counts_and_schema(self, target, members):
        backup = actions.do_create_backup()
        manifest = actions.verify_backup(backup.backup_id)
        assert manifest["row_counts"]["identity_member"] == 3
        assert manifest["schema_version"]["backups"] == "0002_move_backup_keys_to_secrets_dir"
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
        actions.do_record_erasure("identity.member", members[1].pk)
        actions.do_restore_backup(backup.backup_id, to=destination)
        rows = {r[0]: r for r in restored_members(destination)}
        assert rows[members[1].pk][1] == f"erased-{members[1].pk}@erased.invalid"
        assert rows[members[1].pk][3] is False or rows[members[1].pk][3] == 0
        assert rows[members[0].pk][1] == "person0@example.com"

    def test_erased_person_stays_erased_after_restore(self, target, destination):
        from enclave.accounts.models import Account
        from enclave.people.models import Person

        account = Account.objects.create(name="Acme")
        _kept, erased = (Person.objects.create(account=account, email=f"{n}@example.com")
                        for n in ("kept", "erased"))
        backup = actions.do_create_backup()
        actions.do_record_erasure("people.person", erased.pk)
        actions.do_restore_backup(backup.backup_id, to=destination)
        with databases.open_database(destination) as conn, conn.cursor() as cur:
            cur.execute("SELECT email FROM people_person ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == ["kept@example.com"]

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
        assert emails == [f"member-{m.pk}@masked.invalid" for m in members]

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
