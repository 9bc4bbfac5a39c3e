"""The lock between copying an account's people into another table and deleting them
(PostgreSQL; SQLite has one writer, so the two never overlap there).

A broadcast's snapshot copies its recipients' ids into the outbox with ``INSERT …
SELECT`` and no foreign key (a key's check would lock every person it names:
``messaging.models.OutboxMessage``). It holds this advisory lock *shared* for its
transaction; deleting people takes it *exclusively* — the erasure at its start, and
every ``DELETE`` on ``people_person`` in the statement trigger of messaging migration
0012, which repeats the numbers — so a deletion waits for the snapshots that may have
read the people it deletes, then removes what they wrote.

Lock order: this lock first, then any row lock (a broadcast's, a person's), in every
transaction that takes it, so that no two of them wait on each other. It relies on READ
COMMITTED (each statement sees what committed before it began): under a stricter level
a snapshot's statement would still see people deleted while it waited, so both ends
refuse to run there.
"""

from __future__ import annotations

from django.db import connection

# pg_advisory_xact_lock(CLASS, account id modulo 2^31 - 1): the trigger's key.
CLASS = 1_701_999_001
_MODULUS = 2_147_483_647


class WrongIsolation(RuntimeError):
    """The transaction is not READ COMMITTED: the lock would not protect anything."""


def _take(account_id: int, function: str) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('transaction_isolation')")
        if cursor.fetchone()[0] != "read committed":
            raise WrongIsolation("people copies and deletions need READ COMMITTED")
        cursor.execute(f"SELECT {function}(%s, %s)", [CLASS, account_id % _MODULUS])


def hold_for_copy(account_id: int) -> None:
    """Inside a transaction: no deletion of the account's people commits before it ends
    (shared: copies do not wait for each other)."""
    _take(account_id, "pg_advisory_xact_lock_shared")


def hold_for_deletion(account_id: int) -> None:
    """Inside a transaction, before any row lock: every copy of the account's people
    running now has committed, and none starts before this transaction ends."""
    _take(account_id, "pg_advisory_xact_lock")
