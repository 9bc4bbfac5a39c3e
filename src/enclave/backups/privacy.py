"""Personal data in restored databases: erasure tombstones and anonymisation.

Both run as SQL on the restored database, before it is put into place. Each entry names a
model label (as recorded in ``ErasureTombstone.model_label``), its table and the SQL
assignments that erase or mask a row. Later apps (People) add their tables here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PersonalTable:
    table: str
    # SQL assignments (no user input) for a masked (anonymised) row, and for an erased row
    # — or None when erasure deletes the row (after its ``children``: (table, fk column)).
    mask: str
    erase: str | None = None
    children: tuple[tuple[str, str], ...] = ()


PERSONAL_DATA: dict[str, PersonalTable] = {
    "identity.member": PersonalTable(
        table="identity_member",
        mask="email = 'member-' || id || '@masked.invalid', name = ''",
        erase="email = 'erased-' || id || '@erased.invalid', name = '', is_active = FALSE, "
              "password = '!'",
    ),
    # People erasure deletes the person and their tags (enclave.people.do_erase_person).
    "people.person": PersonalTable(
        table="people_person",
        mask="email = 'person-' || id || '@masked.invalid', first_name = '', last_name = '', "
             "phone = '', address = '', ip = NULL, external_id = '', custom = '{}', "
             "sealed_custom = NULL",
        children=(("people_persontag", "person_id"),),
    ),
}


def _existing_tables(conn) -> set[str]:
    return set(conn.introspection.table_names())


def apply_tombstones(conn, tombstones: dict[str, list[str]]) -> int:
    """Erase, in the restored database ``conn``, every row named by a tombstone.

    ``tombstones`` maps model labels to primary keys. Returns how many rows were erased.
    """
    erased = 0
    tables = _existing_tables(conn)
    with conn.cursor() as cur:
        for label, ids in tombstones.items():
            entry = PERSONAL_DATA.get(label)
            if entry is None or entry.table not in tables or not ids:
                continue
            for start in range(0, len(ids), 500):
                batch = [int(i) for i in ids[start:start + 500]]
                marks = ", ".join(["%s"] * len(batch))
                for child, column in entry.children:
                    cur.execute(f'DELETE FROM "{child}" '  # noqa: S608 — fixed SQL
                                f'WHERE "{column}" IN ({marks})', batch)
                if entry.erase is None:
                    cur.execute(f'DELETE FROM "{entry.table}" '  # noqa: S608 — fixed SQL
                                f"WHERE id IN ({marks})", batch)
                else:
                    cur.execute(f'UPDATE "{entry.table}" SET {entry.erase} '  # noqa: S608
                                f"WHERE id IN ({marks})", batch)
                erased += cur.rowcount
    return erased


def anonymize(conn) -> int:
    """Mask every personal-data column in the restored database. Returns rows masked."""
    masked = 0
    tables = _existing_tables(conn)
    with conn.cursor() as cur:
        for entry in PERSONAL_DATA.values():
            if entry.table in tables:
                cur.execute(f'UPDATE "{entry.table}" SET {entry.mask}')  # noqa: S608 — fixed SQL
                masked += cur.rowcount
    return masked
