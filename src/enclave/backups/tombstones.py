"""Erasure tombstones that survive a restore.

A tombstone says "subject ``person`` 42 of account 7 was erased" (ids only). Each is kept
twice, both outside every backup:

* a row of ``backups.ErasureTombstone`` (written in the erasure's transaction; the table
  is excluded from backups and carried over by ``restore --replace``);
* a line of the journal ``<ENCLAVE_SECRETS_DIR>/erasures.jsonl`` (0600, append-only,
  fsync'd after the erasure commits) — so a restore onto a fresh database, after the
  live one was lost, still erases everyone erased since the backup was taken. The
  secrets directory is already what a restore needs besides the backup (backup keys).

A restore re-applies the union of both (:func:`all_tombstones`). If the process stops
between the commit and the journal append, :func:`sync_journal` (run at start and daily)
writes the missing lines.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from enclave.core.overrides import Override

JOURNAL_NAME = "erasures.jsonl"
_override: Override[Path] = Override()

Entry = tuple[str, int | None, int, str]  # (subject, account id, object id, row key)


def journal_path() -> Path:
    return _override.value or settings.CONFIG.secrets_dir / JOURNAL_NAME


def use_journal(path: Path):
    """Tests: keep the journal at ``path`` for the duration of the block."""
    return _override.use(path)


def _line(entry: Entry) -> str:
    subject, account_id, object_id, row_key = entry
    return json.dumps({"subject": subject, "account_id": account_id, "id": object_id,
                       "row_key": row_key}, sort_keys=True) + "\n"


def append(entries: Iterable[Entry]) -> None:
    """Append ``entries`` to the journal (created 0600), durably."""
    text = "".join(_line(e) for e in entries)
    if not text:
        return
    path = journal_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def append_after_commit(entry: Entry) -> None:
    transaction.on_commit(lambda: append([entry]))


def read_journal() -> set[Entry]:
    """Every entry in the journal (a torn last line from a crash is ignored)."""
    path = journal_path()
    if not path.exists():
        return set()
    out: set[Entry] = set()
    for raw in path.read_text().splitlines():
        try:
            item = json.loads(raw)
            account_id = item["account_id"]
            out.add((str(item["subject"]), None if account_id is None else int(account_id),
                     int(item["id"]), str(item.get("row_key") or "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def _table_entries() -> set[Entry]:
    from enclave.backups.models import ErasureTombstone

    return set(ErasureTombstone.objects.values_list("subject", "account_id", "object_id",
                                                    "row_key"))


def all_tombstones() -> dict[str, list[tuple[int | None, int, str]]]:
    """``{subject: [(account id, id, row key), ...]}`` from the table and the journal."""
    out: dict[str, list[tuple[int | None, int, str]]] = {}
    for subject, account_id, object_id, row_key in sorted(_table_entries() | read_journal(),
                                                          key=lambda e: (e[0], e[2], e[3])):
        out.setdefault(subject, []).append((account_id, object_id, row_key))
    return out


def sync_journal() -> int:
    """Write table rows the journal lacks (a crash between commit and append). Returns
    how many lines were added."""
    missing = sorted(_table_entries() - read_journal(), key=lambda e: (e[0], e[2], e[3]))
    append(missing)
    return len(missing)
