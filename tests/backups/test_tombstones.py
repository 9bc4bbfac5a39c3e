"""Erasure tombstones live outside every backup: a table that restores carry over and a
journal in the secrets directory that survives losing the database."""

from __future__ import annotations

import stat

import pytest
from django.test import TestCase

from enclave.backups import actions, tombstones
from enclave.backups.models import ErasureTombstone


@pytest.fixture
def erasure_journal(_erasure_journal):
    """The journal path (the autouse fixture in tests/conftest.py gives each test its own)."""
    return _erasure_journal


def record(object_id: int, account_id: int | None = 7) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        actions.do_record_erasure("person", object_id, account_id=account_id,
                                  row_key=f"key-{object_id}")


@pytest.mark.django_db
class TestJournal:
    def test_recording_an_erasure_appends_it_to_the_journal_after_commit(self, erasure_journal):
        record(42)
        assert tombstones.read_journal() == {("person", 7, 42, "key-42")}
        assert stat.S_IMODE(erasure_journal.stat().st_mode) == 0o600

    def test_a_rolled_back_erasure_writes_no_journal_line(self, erasure_journal):
        from django.db import transaction

        def erasure_that_fails_later():
            with transaction.atomic():
                actions.do_record_erasure("person", 42, account_id=7, row_key="key-42")
                raise RuntimeError("the erasure failed later")

        with TestCase.captureOnCommitCallbacks(execute=True), pytest.raises(RuntimeError):
            erasure_that_fails_later()
        assert tombstones.read_journal() == set()

    def test_the_journal_holds_ids_only(self, erasure_journal):
        record(42)
        assert erasure_journal.read_text() == (
            '{"account_id": 7, "id": 42, "row_key": "key-42", "subject": "person"}\n')

    def test_a_torn_last_line_is_ignored(self, erasure_journal):
        record(42)
        with erasure_journal.open("a") as fh:
            fh.write('{"account_id": 7, "id": 4')
        assert tombstones.read_journal() == {("person", 7, 42, "key-42")}

    def test_all_tombstones_is_the_union_of_table_and_journal(self, erasure_journal):
        record(1)
        ErasureTombstone.objects.create(subject="person", account_id=7, object_id=2,
                                        row_key="key-2")
        tombstones.append([("person", 8, 3, "key-3")])
        assert tombstones.all_tombstones() == {
            "person": [(7, 1, "key-1"), (7, 2, "key-2"), (8, 3, "key-3")]}

    def test_sync_writes_rows_the_journal_missed(self, erasure_journal):
        ErasureTombstone.objects.create(subject="person", account_id=7, object_id=2,
                                        row_key="key-2")
        assert tombstones.sync_journal() == 1
        assert tombstones.sync_journal() == 0
        assert tombstones.read_journal() == {("person", 7, 2, "key-2")}
