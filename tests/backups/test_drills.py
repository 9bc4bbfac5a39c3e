"""Restore drills and the BAK-1..3 controls."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.backups import actions, controls, retention
from enclave.backups.models import RestoreDrill
from enclave.core import clock
from enclave.core.controls import FAIL, PASS, Probe, registry

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)


def status(control_id: str) -> str:
    return registry()[control_id].check(Probe.from_settings()).status


class TestDrill:
    def test_drill_restores_latest_backup_and_records_rto(self, target, members):
        actions.do_create_backup()
        latest = actions.do_create_backup()
        drill = actions.do_run_restore_drill()
        assert (drill.succeeded, drill.backup_id) == (True, latest.backup_id), drill.detail
        assert drill.rto_seconds > 0
        assert "tables match the manifest" in drill.detail

    def test_drill_passes_after_erasing_a_person_with_events_since_the_backup(self, target):
        from tests.backups.test_actions import erasable_world, erase

        world = erasable_world()
        latest = actions.do_create_backup()
        erase(world)
        drill = actions.do_run_restore_drill()
        assert (drill.succeeded, drill.backup_id) == (True, latest.backup_id), drill.detail
        assert "1 erased subject(s) checked gone" in drill.detail

    def test_drill_leaves_no_scratch_database(self, target, members, settings):
        actions.do_create_backup()
        assert actions.do_run_restore_drill().succeeded  # the scratch database was used
        scratch = settings.CONFIG.var_dir / "backup-tmp"
        assert list(scratch.iterdir()) == []

    def test_drill_without_backup_fails(self, target):
        drill = actions.do_run_restore_drill()
        assert not drill.succeeded
        assert "no complete backup" in drill.detail

    def test_drill_of_corrupt_backup_fails_naming_chunk(self, target, members):
        backup = actions.do_create_backup()
        path = target.root / backup.backup_id / "data.enc"
        blob = bytearray(path.read_bytes())
        blob[-5] ^= 0xFF
        path.write_bytes(bytes(blob))
        drill = actions.do_run_restore_drill()
        assert not drill.succeeded
        assert "chunk" in drill.detail


class TestControls:
    def test_bak1_passes_with_fresh_backup(self, target, members):
        actions.do_create_backup()
        assert status("BAK-1") == PASS

    def test_bak1_fails_after_25_hours(self, target, members):
        actions.do_create_backup()
        with clock.travel(dt.timedelta(hours=26)):
            assert status("BAK-1") == FAIL

    def test_bak2_passes_for_a_daily_series(self, target):
        with clock.frozen(START):
            for _ in range(5):
                actions.do_create_backup()
                clock.advance(dt.timedelta(days=1))
            assert status("BAK-2") == PASS

    def test_bak2_fails_when_a_day_is_missing(self, target):
        with clock.frozen(START):
            actions.do_create_backup()
            clock.advance(dt.timedelta(days=2))
            actions.do_create_backup()
            clock.advance(dt.timedelta(hours=1))
            assert status("BAK-2") == FAIL

    def test_bak2_fails_when_a_backup_is_older_than_90_days(self):
        now = START + dt.timedelta(days=100)
        ids = [f"{START:{retention.ID_FORMAT}}-aaaaaa", f"{now:{retention.ID_FORMAT}}-bbbbbb"]
        assert controls.retention_problems(ids, now)[0].endswith("still present")

    def test_bak3_passes_after_a_successful_drill(self, target, members):
        actions.do_create_backup()
        actions.do_run_restore_drill()
        assert status("BAK-3") == PASS

    def test_bak3_fails_after_8_days(self, target, members):
        actions.do_create_backup()
        actions.do_run_restore_drill()
        with clock.travel(dt.timedelta(days=8, hours=1)):
            assert status("BAK-3") == FAIL

    def test_bak3_ignores_failed_drills(self, target):
        actions.do_run_restore_drill()
        assert RestoreDrill.objects.count() == 1
        assert status("BAK-3") == FAIL
