"""The outbox loses its foreign-key constraints and their two redundant indexes; a
trigger per referenced table takes their place.

A foreign key's check locks every referenced row (``FOR KEY SHARE``): snapshotting a
million recipients rewrote a million ``people_person`` rows at commit (9 s of the 22).
What the constraints guaranteed — no outbox row outlives its person or broadcast — the
triggers keep: after a ``DELETE`` on either table, the deleted rows' outbox rows go.

PostgreSQL: statement triggers with transition tables. A person's deletion first waits
for every snapshot running in their account (``enclave.people.locks``, whose numbers the
function repeats), so a snapshot that read them before they went has committed and its
rows are seen: each statement of the function takes a fresh snapshot under READ
COMMITTED, and the function refuses any other level. A broadcast is deleted only after
its row lock, which a snapshot holds. SQLite: row triggers (one writer: nothing to wait
for).

Undone, the constraints come back — after the rows they would refuse are deleted.
"""

import django.db.models.deletion
from django.db import migrations, models

POSTGRESQL = """
CREATE OR REPLACE FUNCTION enclave_outbox_people_gone() RETURNS trigger AS $$
DECLARE
    account bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'deleting people needs READ COMMITTED (enclave.people.locks)';
    END IF;
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
"""

POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS enclave_outbox_people_gone ON people_person;
DROP FUNCTION IF EXISTS enclave_outbox_people_gone();
DROP TRIGGER IF EXISTS enclave_outbox_broadcasts_gone ON messaging_broadcast;
DROP FUNCTION IF EXISTS enclave_outbox_broadcasts_gone();
"""

SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS enclave_outbox_people_gone AFTER DELETE ON people_person "
    "BEGIN DELETE FROM messaging_outboxmessage WHERE person_id = OLD.id; END",
    "CREATE TRIGGER IF NOT EXISTS enclave_outbox_broadcasts_gone AFTER DELETE ON "
    "messaging_broadcast BEGIN DELETE FROM messaging_outboxmessage "
    "WHERE broadcast_id = OLD.id; END",
]

SQLITE_DROP = ["DROP TRIGGER IF EXISTS enclave_outbox_people_gone",
               "DROP TRIGGER IF EXISTS enclave_outbox_broadcasts_gone"]


# Per database: what installs the triggers, what removes them.
STATEMENTS = {"postgresql": ([POSTGRESQL], [POSTGRESQL_DROP]), "sqlite": (SQLITE, SQLITE_DROP)}


def _run(which: int):
    def run(apps, schema_editor):
        for statement in STATEMENTS.get(schema_editor.connection.vendor, ((), ()))[which]:
            schema_editor.execute(statement, params=None)
    return run


def forget_orphans(apps, schema_editor):
    """Undoing: rows whose person or broadcast is gone would fail the constraints."""
    schema_editor.execute(
        "DELETE FROM messaging_outboxmessage WHERE person_id NOT IN "
        "(SELECT id FROM people_person) OR broadcast_id NOT IN "
        "(SELECT id FROM messaging_broadcast)", params=None)


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
        migrations.RunPython(migrations.RunPython.noop, forget_orphans),
        migrations.RunPython(_run(0), _run(1)),
    ]
