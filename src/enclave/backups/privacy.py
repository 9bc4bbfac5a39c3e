"""Personal data in restored databases: erasure tombstones and anonymisation.

Both run as SQL on the restored database, before it is put into place, and both are
derived from the one personal-data registry (``enclave.access.personal_data``): erasing
a subject in a restored copy runs exactly the steps the live erasure ran.
"""

from __future__ import annotations

from enclave.access import personal_data
from enclave.backups import databases


def apply_tombstones(conn, tombstones: dict[str, list[tuple]]) -> int:
    """Erase, in the restored database ``conn``, every subject named by a tombstone
    (``{subject: [(account id, id, row key), ...]}``; a subject whose id now belongs to
    another row is left alone). Returns how many rows were touched."""
    return sum(personal_data.erase_subjects(conn, subject, targets)
               for subject, targets in tombstones.items()
               if subject in personal_data.SUBJECTS and targets)


def reserve_erased_ids(conn, tombstones: dict[str, list[tuple]]) -> int:
    """Move the id sequence of each subject's own table (``people_person``,
    ``identity_member``) in the restored database ``conn`` past every tombstoned id.

    A backup taken before a subject was created carries a sequence below that subject's
    id, so the restored database would hand the id to the next new row — and every later
    restore, which erases tombstones by id, would erase that innocent row. Returns how
    many sequences were moved. (Tombstones also name the erased row, so even a reused id
    would not be erased by mistake; this keeps ids from being reused at all.)"""
    moved = 0
    tables = set(conn.introspection.table_names())
    for subject, targets in tombstones.items():
        if subject not in personal_data.SUBJECTS or not targets:
            continue
        top = max(int(target[1]) for target in targets)
        for _, link, table in personal_data.erasure_steps(subject):
            if link.column != "id" or link.by_account or table not in tables:
                continue
            moved += databases.advance_id_sequence(conn, table, top)
    return moved


def anonymize(conn) -> int:
    """Replace every personal value in the restored database (registry-derived).
    Returns how many rows were rewritten."""
    return personal_data.anonymise_database(conn)
