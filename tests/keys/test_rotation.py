"""Rotation: data keys, KEK, retirement, bulk re-encryption (interrupted and resumed), CLI."""

import datetime as dt

import pytest

from enclave import cli
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.keys import api, keyring, references, tasks
from enclave.keys.actions import do_retire_key_version, do_rotate_data_key, do_rotate_kek
from enclave.keys.errors import KeyInUse, RetiredKeyVersion
from enclave.keys.models import DataKey, ReencryptionRun
from enclave.keys.reencrypt import do_reencrypt_values, pending_counts

AAD = b"ctx"


def versions(model, column="secret") -> list[int]:
    return sorted({int(v.split(":")[2]) for v in
                   model.objects.exclude(**{column: None}).values_list(column, flat=True)})


class Interrupted(Exception):
    pass


@pytest.mark.django_db
class TestRotateDataKey:
    def test_rotation_makes_a_new_primary_and_keeps_the_old_one_active(self, memory_keyring):
        api.encrypt("fields", b"x", aad=AAD)
        do_rotate_data_key("fields", actor=None)
        states = dict(DataKey.objects.filter(purpose="fields").values_list("version", "state"))
        assert states == {1: "active", 2: "primary"}

    def test_rotation_is_audited(self, memory_keyring):
        before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        do_rotate_data_key("logs", actor=None)
        do_rotate_data_key("logs", actor=None)
        events = list(AuditEvent.objects.filter(pk__gt=before, target_type="data_key")
                      .order_by("pk").values_list("event_type", "target_id"))
        assert events == [(AuditEventType.DATA_KEY_CREATED, "logs:1"),
                          (AuditEventType.DATA_KEY_ROTATED, "logs:2")]

    def test_data_keys_are_stored_only_wrapped(self, memory_keyring):
        api.encrypt("fields", b"x", aad=AAD)
        material = keyring.primary("fields")
        row = DataKey.objects.get(purpose="fields", version=1)
        assert material.aead_key not in bytes(row.wrapped)
        assert row.kek_id == "memory:1"


@pytest.mark.django_db
class TestRotateKek:
    def test_kek_rotation_rewraps_keys_and_data_still_decrypts(self, file_keyring):
        ciphertext = api.encrypt("fields", b"keep me", aad=AAD)
        do_rotate_kek(actor=None)
        keyring.clear_cache()
        assert set(DataKey.objects.values_list("kek_id", flat=True)) == {"file:2"}
        file_keyring.path_for("file:1").unlink()  # the old KEK is no longer needed
        assert api.decrypt("fields", ciphertext, aad=AAD) == b"keep me"
        assert AuditEvent.objects.filter(event_type=AuditEventType.KEK_ROTATED).exists()


@pytest.mark.django_db
class TestRetire:
    def test_retire_is_refused_while_values_use_the_version(self, holder, memory_keyring):
        holder.objects.create(secret="still on v1")
        do_rotate_data_key("fields", actor=None)
        with pytest.raises(KeyInUse, match=r"still protects 1 value\(s\) \(1 in "
                                           r"keys_tests.SecretHolder.secret\)"):
            do_retire_key_version("fields", 1, actor=None)

    def test_retire_is_refused_for_the_primary_version(self, memory_keyring):
        api.encrypt("fields", b"x", aad=AAD)
        with pytest.raises(KeyInUse, match=r"primary"):
            do_retire_key_version("fields", 1, actor=None)

    def test_registered_counter_also_blocks_retirement(self, memory_keyring):
        api.encrypt("logs", b"x", aad=AAD)
        do_rotate_data_key("logs", actor=None)
        references.register_reference_counter("test.segments", lambda p, v: 3 if p == "logs" else 0)
        try:
            with pytest.raises(KeyInUse, match=r"3 in test.segments"):
                do_retire_key_version("logs", 1, actor=None)
        finally:
            references._counters.pop("test.segments")

    def test_retired_version_no_longer_decrypts(self, holder, memory_keyring):
        ciphertext = api.encrypt("fields", b"old", aad=AAD)
        do_rotate_data_key("fields", actor=None)
        do_retire_key_version("fields", 1, actor=None)
        assert bytes(DataKey.objects.get(purpose="fields", version=1).wrapped) == b""
        keyring.clear_cache()
        with pytest.raises(RetiredKeyVersion, match=r"fields key v1 was retired"):
            api.decrypt("fields", ciphertext, aad=AAD)


@pytest.mark.django_db
class TestReencrypt:
    def make_rows(self, holder, n):
        rows = [holder(secret=f"secret-{i}", blob=f"blob-{i}".encode()) for i in range(n)]
        holder.objects.bulk_create(rows)
        return {r.row_id: (r.secret, r.blob) for r in holder.objects.all()}

    def test_reencrypt_moves_every_value_to_the_primary_version(self, holder, memory_keyring):
        expected = self.make_rows(holder, 7)
        do_rotate_data_key("fields", actor=None)
        report = do_reencrypt_values(actor=None, batch_size=3)
        assert report.ok
        assert report.reencrypted == 14
        assert versions(holder) == [2]
        assert versions(holder, "blob") == [2]
        assert {r.row_id: (r.secret, r.blob) for r in holder.objects.all()} == expected
        do_retire_key_version("fields", 1, actor=None)

    def test_interrupted_run_resumes_from_its_cursor(self, holder, memory_keyring):
        expected = self.make_rows(holder, 10)
        do_rotate_data_key("fields", actor=None)

        def stop_after_two_batches(scanned):
            if scanned >= 8:
                raise Interrupted

        with pytest.raises(Interrupted):
            do_reencrypt_values(actor=None, batch_size=4, on_batch=stop_after_two_batches)
        run = ReencryptionRun.objects.get()
        assert run.finished_at is None
        assert run.reencrypted == 8
        assert versions(holder, "blob") == [1, 2]  # columns go in label order: blob first

        report = do_reencrypt_values(actor=None, batch_size=4)
        assert report.resumed
        assert report.run_id == run.pk
        assert report.ok
        assert report.reencrypted == 12
        assert versions(holder) == [2]
        assert versions(holder, "blob") == [2]
        assert {r.row_id: (r.secret, r.blob) for r in holder.objects.all()} == expected
        pending = pending_counts()
        assert pending["keys_tests.SecretHolder.blob"] == 0
        assert pending["keys_tests.SecretHolder.secret"] == 0
        assert set(pending.values()) == {0}  # every encrypted column of every app

    def test_verification_reports_an_undecryptable_value_by_row(self, holder, memory_keyring):
        from enclave.keys.fields import Sealed

        a, b = holder.objects.create(secret="a"), holder.objects.create(secret="b")
        raw_a = holder.objects.filter(pk=a.pk).values_list("secret", flat=True).get()
        holder.objects.filter(pk=b.pk).update(secret=Sealed(raw_a))
        do_rotate_data_key("fields", actor=None)
        report = do_reencrypt_values(actor=None)
        assert not report.ok
        assert report.failures == [f"keys_tests.SecretHolder.secret pk={b.pk}: "
                                   "ciphertext (fields key v1) failed authentication: it was "
                                   "altered, or it belongs to another context (associated "
                                   "data differs, e.g. copied from another row or column)"]

    def test_reencrypt_is_audited(self, holder, memory_keyring):
        do_reencrypt_values(actor=None)
        assert AuditEvent.objects.filter(event_type=AuditEventType.KEYS_REENCRYPTED).exists()


@pytest.mark.django_db
class TestKeysCli:
    def test_rotate_then_reencrypt_shows_progress_and_verifies(self, holder, memory_keyring,
                                                               capsys):
        holder.objects.bulk_create([holder(secret=f"s{i}") for i in range(5)])
        assert cli.main(["keys", "rotate", "fields"]) == 0
        assert "fields: new primary key v2" in capsys.readouterr().out
        assert cli.main(["keys", "reencrypt", "--batch-size", "2"]) == 0
        out, err = capsys.readouterr()
        assert "[" in err
        assert "5/5" in err
        assert "verified: every value decrypts" in out
        assert versions(holder) == [2]

    def test_status_lists_keys_and_pending_values(self, holder, memory_keyring, capsys):
        holder.objects.create(secret="s")
        do_rotate_data_key("fields", actor=None)
        assert cli.main(["keys", "status"]) == 0
        out = capsys.readouterr().out
        assert "fields         2 primary" in out
        assert "pending re-encryption: keys_tests.SecretHolder.secret 1" in out

    def test_unknown_purpose_is_one_line_and_non_zero(self, memory_keyring, capsys):
        assert cli.main(["keys", "rotate", "payroll"]) == 1
        assert capsys.readouterr().err == (
            "enclave: keys: unknown key purpose 'payroll'; expected one of "
            "fields, logs, backups, tokens\n")

    def test_rotate_kek_prints_the_new_kek(self, file_keyring, capsys):
        api.encrypt("fields", b"x", aad=AAD)
        assert cli.main(["keys", "rotate-kek"]) == 0
        assert "wrapped by file:2" in capsys.readouterr().out

    def test_bad_batch_size_is_refused(self, capsys):
        with pytest.raises(SystemExit) as exc:
            cli.main(["keys", "reencrypt", "--batch-size", "0"])
        assert exc.value.code == 2
        assert "expected a positive integer" in capsys.readouterr().err


@pytest.mark.django_db
class TestScheduledRotation:
    def test_job_rotates_only_keys_older_than_the_policy(self, memory_keyring):
        for purpose in ("fields", "logs", "backups", "tokens"):
            api.encrypt(purpose, b"x", aad=AAD)
        assert tasks.rotate_expired_keys() == {"data_keys": [], "kek": None}
        with clock.travel(dt.timedelta(days=91)):
            rotated = tasks.rotate_expired_keys()
        assert rotated["data_keys"] == ["fields:2", "logs:2", "backups:2", "tokens:2"]

    def test_job_rotates_an_old_file_kek(self, file_keyring):
        api.encrypt("fields", b"x", aad=AAD)
        with clock.travel(dt.timedelta(days=91)):
            assert tasks.rotate_expired_keys()["kek"] == "file:2"
