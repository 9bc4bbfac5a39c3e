"""The outbox loses its foreign-key constraints and their two redundant indexes; on
PostgreSQL a statement trigger per referenced table takes their place.

A foreign key's check locks every referenced row (``FOR KEY SHARE``): snapshotting a
million recipients rewrote a million ``people_person`` rows at commit (9 s of the 22).
What the constraints guaranteed — no outbox row outlives its person or broadcast — the
triggers keep: after a ``DELETE`` on either table, the deleted rows' outbox rows go. A
person's deletion first waits for every snapshot running in their account
(``pg_advisory_xact_lock`` against the snapshot's shared lock,
``messaging.actions.broadcasts.SNAPSHOT_LOCK``), so a snapshot that read them before they
went has committed and its rows are seen (each statement of the trigger function takes a
fresh snapshot). A broadcast is deleted only after its row lock, which a snapshot holds.

And the outbox's ``state`` compares bytewise (``COLLATE "C"``): its two indexes cost half
as much to fill — the database's default collation (``C.UTF-8`` here) goes through the
C library's collation for every comparison. Not in the model (SQLite has no "C"); an
``AlterField`` of ``state`` later must keep it (``tests/messaging/test_outbox_schema.py``).
"""

import django.db.models.deletion
from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION enclave_outbox_people_gone() RETURNS trigger AS $$
DECLARE
    account bigint;
BEGIN
    FOR account IN SELECT DISTINCT account_id FROM gone ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1701999001, (account % 2147483647)::integer);
    END LOOP;
    DELETE FROM messaging_outboxmessage o USING gone g WHERE o.person_id = g.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS enclave_outbox_people_gone ON people_person;
CREATE TRIGGER enclave_outbox_people_gone
    AFTER DELETE ON people_person REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION enclave_outbox_people_gone();

CREATE OR REPLACE FUNCTION enclave_outbox_broadcasts_gone() RETURNS trigger AS $$
BEGIN
    DELETE FROM messaging_outboxmessage o USING gone g WHERE o.broadcast_id = g.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS enclave_outbox_broadcasts_gone ON messaging_broadcast;
CREATE TRIGGER enclave_outbox_broadcasts_gone
    AFTER DELETE ON messaging_broadcast REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION enclave_outbox_broadcasts_gone();

ALTER TABLE messaging_outboxmessage ALTER COLUMN state TYPE varchar(10) COLLATE "C";
"""

DROP = """
DROP TRIGGER IF EXISTS enclave_outbox_people_gone ON people_person;
DROP FUNCTION IF EXISTS enclave_outbox_people_gone();
DROP TRIGGER IF EXISTS enclave_outbox_broadcasts_gone ON messaging_broadcast;
DROP FUNCTION IF EXISTS enclave_outbox_broadcasts_gone();
ALTER TABLE messaging_outboxmessage ALTER COLUMN state TYPE varchar(10) COLLATE "default";
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0011_broadcast_local_time"),
        ("people", "0005_person_time_zone"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboxmessage",
            name="broadcast",
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="messaging.broadcast"),
        ),
        migrations.AlterField(
            model_name="outboxmessage",
            name="person",
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="people.person"),
        ),
        migrations.RunPython(install, remove),
    ]
