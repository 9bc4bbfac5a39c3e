"""The retention policy, as a pure function of backup dates and "now".

* younger than :data:`KEEP_ALL_DAYS` (30): always kept;
* older than :data:`EXPUNGE_AFTER_DAYS` (90): always expunged (deleted from the target and
  the data key destroyed);
* in between: kept, or with ``weekly`` thinning only the newest backup of each ISO week.
"""

from __future__ import annotations

import datetime as dt

KEEP_ALL_DAYS = 30
EXPUNGE_AFTER_DAYS = 90
ID_FORMAT = "%Y%m%dT%H%M%S%fZ"


def created_from_id(backup_id: str) -> dt.datetime | None:
    """A backup id starts with its UTC creation time; None for foreign names."""
    try:
        return dt.datetime.strptime(backup_id.split("-", 1)[0], ID_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def plan(ids: list[str], now: dt.datetime, thinning: str = "none") -> tuple[list[str], list[str]]:
    """(keep, expunge) for the given backup ids at ``now``. Ids without a date are kept
    (never delete what we cannot date)."""
    keep, expunge, middle = [], [], {}
    for backup_id in sorted(ids):
        created = created_from_id(backup_id)
        if created is None:
            keep.append(backup_id)
            continue
        age = now - created
        if age > dt.timedelta(days=EXPUNGE_AFTER_DAYS):
            expunge.append(backup_id)
        elif age < dt.timedelta(days=KEEP_ALL_DAYS) or thinning == "none":
            keep.append(backup_id)
        else:
            middle.setdefault(created.isocalendar()[:2], []).append(backup_id)
    for week_ids in middle.values():
        keep.append(week_ids[-1])  # sorted ids: the newest of the week
        expunge.extend(week_ids[:-1])
    return sorted(keep), sorted(expunge)
