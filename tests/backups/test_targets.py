"""The S3-compatible target, for real against moto's server mode, and target failures."""

from __future__ import annotations

import pytest

from enclave.backups import actions, services
from enclave.backups.errors import BackupNotFound, BackupTargetError

from .conftest import member_rows

pytestmark = pytest.mark.django_db(transaction=True)


class TestS3Target:
    def test_round_trip_through_s3(self, s3_target, members, destination):
        from enclave.backups import databases

        before = member_rows()
        backup = actions.do_create_backup()
        assert s3_target.list_ids() == [backup.backup_id]
        actions.do_restore_backup(backup.backup_id, to=destination)
        with databases.open_database(destination) as conn:
            assert member_rows(conn) == before

    def test_stored_object_is_encrypted(self, s3_target, members):
        backup = actions.do_create_backup()
        body = s3_target.client.get_object(
            Bucket=s3_target.bucket, Key=f"{s3_target.prefix}{backup.backup_id}/data.enc")
        assert b"person0@example.com" not in body["Body"].read()

    def test_upload_without_manifest_is_not_listed(self, s3_target):
        upload = s3_target.open_upload("20260101T000000000000Z-aaaaaa")
        upload.write(b"partial")
        upload.commit()
        assert s3_target.list_ids() == []
        assert s3_target.list_incomplete() == ["20260101T000000000000Z-aaaaaa"]
        with pytest.raises(BackupNotFound):
            s3_target.open_data("20260101T000000000000Z-aaaaaa")

    def test_prune_deletes_objects_and_key(self, s3_target, members, key_dir):
        import datetime as dt

        from enclave.core import clock

        with clock.frozen(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
            backup = actions.do_create_backup()
            clock.advance(dt.timedelta(days=91))
            actions.do_prune_backups()
        assert s3_target.list_ids() == []
        assert not (key_dir / f"{backup.backup_id}.key").exists()


class TestUnreachableTarget:
    def test_unreachable_s3_is_one_clear_error(self, members, monkeypatch, key_dir):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        dead = services.S3Target("nowhere", endpoint_url="http://127.0.0.1:9")
        with services.use_target(dead), pytest.raises(BackupTargetError, match="unreachable"):
            actions.do_create_backup()
        assert list(key_dir.glob("*.key")) == []

    def test_unwritable_local_directory_is_one_clear_error(self, members, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with services.use_target(services.LocalDirectoryTarget(blocker / "backups")), \
                pytest.raises(BackupTargetError, match="backup directory"):
            actions.do_create_backup()
