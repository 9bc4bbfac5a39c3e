"""Indexes for the people list search on PostgreSQL.

The list search matches the start of each field the member may see, case-insensitively
(Django's ``istartswith``: ``UPPER(col::text) LIKE UPPER('q%')``). One B-tree per
searched field on ``(account_id, UPPER(col::text) text_pattern_ops)`` turns that into an
index range scan per field (a bitmap OR across the visible fields), so searching a
million people reads only the matching rows. B-trees, not trigram GIN indexes: each
adds one entry per row, which keeps the CSV import fast (see docs/benchmarks.md).

SQLite has no operator classes; there the migration does nothing (search stays correct).
"""

from django.db import migrations

# visibility.QUERYABLE, spelled out: a migration must not change when the code does.
SEARCHED = ("email", "first_name", "last_name", "phone", "company", "country",
            "external_id", "consent")


def _index(field: str) -> str:
    return f"people_person_{field}_prefix"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for field in SEARCHED:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_index(field)} ON people_person "
            f"(account_id, UPPER({field}::text) text_pattern_ops)")


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for field in SEARCHED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {_index(field)}")


class Migration(migrations.Migration):

    dependencies = [
        ("people", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
