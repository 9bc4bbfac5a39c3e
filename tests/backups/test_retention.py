"""Retention: 120 simulated days of daily backups leave exactly what the policy says."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from enclave.backups import actions, retention
from enclave.backups.errors import BackupRefused
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType

START = dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.UTC)


def ids_aged(now: dt.datetime, days) -> list[str]:
    return [f"{(now - dt.timedelta(days=d)):{retention.ID_FORMAT}}-aaaaaa" for d in days]


def ages_in_days(ids: list[str], now: dt.datetime) -> list[int]:
    return sorted((now - retention.created_from_id(i)).days for i in ids)


class TestPlan:
    def test_young_backups_are_kept_whatever_the_thinning(self):
        now = START + dt.timedelta(days=200)
        ids = ids_aged(now, range(30))
        keep, expunge = retention.plan(ids, now, "weekly")
        assert (len(keep), expunge) == (30, [])

    def test_weekly_thinning_keeps_one_per_week_between_30_and_90_days(self):
        now = START + dt.timedelta(days=200)
        ids = ids_aged(now, range(30, 90))
        keep, _ = retention.plan(ids, now, "weekly")
        weeks = {retention.created_from_id(i).isocalendar()[:2] for i in ids}
        assert len(keep) == len(weeks)

    def test_undated_names_are_never_deleted(self):
        keep, expunge = retention.plan(["not-a-date"], START, "weekly")
        assert (keep, expunge) == (["not-a-date"], [])


@pytest.mark.django_db(transaction=True)
class TestSimulation:
    def test_120_daily_backups_leave_the_last_91_days(self, target, key_dir):
        with clock.frozen(START):
            for _ in range(120):
                actions.do_create_backup()
                actions.do_prune_backups()
                clock.advance(dt.timedelta(days=1))
            now = clock.now() - dt.timedelta(days=1)
        ages = ages_in_days(target.list_ids(), now)
        # Day 0..90 old: 91 backups; every one older than 90 days is gone, key and data.
        assert ages == list(range(91))
        assert len(list(key_dir.glob("*.key"))) == 91
        assert AuditEvent.objects.filter(event_type=AuditEventType.BACKUP_EXPUNGED).count() == 29

    def test_copy_of_expunged_backup_is_unreadable(self, target, tmp_path, key_dir):
        with clock.frozen(START):
            first = actions.do_create_backup()
            copy = tmp_path / "copy"
            shutil.copytree(target.root / first.backup_id, copy)
            clock.advance(dt.timedelta(days=91))
            actions.do_prune_backups()
        assert target.list_ids() == []
        assert not (key_dir / f"{first.backup_id}.key").exists()
        shutil.copytree(copy, target.root / first.backup_id)  # the copy comes back
        with pytest.raises(BackupRefused, match="no data key"):
            actions.verify_backup(first.backup_id)

    def test_dry_run_changes_nothing(self, target, key_dir):
        with clock.frozen(START):
            first = actions.do_create_backup()
            clock.advance(dt.timedelta(days=91))
            plan = actions.do_prune_backups(dry_run=True)
        assert plan["expunge"] == [first.backup_id]
        assert target.list_ids() == [first.backup_id]
        assert (key_dir / f"{first.backup_id}.key").exists()

    def test_weekly_thinning_over_120_days(self, target, settings):
        import dataclasses

        settings.CONFIG = dataclasses.replace(settings.CONFIG, backup_thinning="weekly")
        with clock.frozen(START):
            for _ in range(120):
                actions.do_create_backup()
                actions.do_prune_backups()
                clock.advance(dt.timedelta(days=1))
            now = clock.now() - dt.timedelta(days=1)
        ids = target.list_ids()
        young = [i for i in ids if (now - retention.created_from_id(i)).days < 30]
        old = [retention.created_from_id(i) for i in ids
               if (now - retention.created_from_id(i)).days >= 30]
        assert len(young) == 30
        assert len({d.isocalendar()[:2] for d in old}) == len(old)  # one per week
        # ... for every week that had a backup 30 to 90 days old, and none older.
        weeks = {(now - dt.timedelta(days=d)).isocalendar()[:2] for d in range(30, 91)}
        assert {d.isocalendar()[:2] for d in old} == weeks
        assert max((now - d).days for d in old) <= 90
