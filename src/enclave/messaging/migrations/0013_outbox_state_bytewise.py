"""PostgreSQL: the outbox's ``state`` compares bytewise (``COLLATE "C"``), so its two
indexes cost half as much to fill — the database's default collation (``C.UTF-8``
here) goes through the C library for every comparison. Its own migration: rebuilding
those indexes locks only the outbox, not the people and broadcasts 0012's triggers lock.

Not in the model (SQLite has no "C"): an ``AlterField`` of ``state`` later must keep
it (``tests/messaging/test_outbox_schema.py`` checks).
"""

from django.db import migrations


def bytewise(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE messaging_outboxmessage ALTER COLUMN state "
                              'TYPE varchar(10) COLLATE "C"', params=None)


def by_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE messaging_outboxmessage ALTER COLUMN state "
                              'TYPE varchar(10) COLLATE "default"', params=None)


class Migration(migrations.Migration):

    dependencies = [("messaging", "0012_outbox_without_row_locks")]

    operations = [migrations.RunPython(bytewise, by_default)]
