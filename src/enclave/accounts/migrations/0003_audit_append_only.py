"""PostgreSQL: the audit table refuses UPDATE/DELETE except during the erasure scrub.

See ``enclave.accounts.auditlog``. SQLite enforces the same rule in the application.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION enclave_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF current_setting('enclave.audit_scrub', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL AND OLD.actor_id IS NOT NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;  -- ON DELETE SET NULL when a member is deleted
    END IF;
    RAISE EXCEPTION 'core_auditevent is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS enclave_audit_append_only ON core_auditevent;
CREATE TRIGGER enclave_audit_append_only
    BEFORE UPDATE OR DELETE ON core_auditevent
    FOR EACH ROW EXECUTE FUNCTION enclave_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS enclave_audit_append_only ON core_auditevent;
DROP FUNCTION IF EXISTS enclave_audit_append_only();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_roles"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, remove)]
