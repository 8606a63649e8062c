"""On PostgreSQL, reject UPDATE, DELETE and TRUNCATE on audit_logs in SQL.

The ORM already refuses (PermanentEntryError); the triggers close the raw-SQL
path too. Other backends skip this migration; SQLite has no TRUNCATE and the
ORM guard covers it.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION dmobs_audit_logs_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed (audit entries are permanent)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_logs_immutable_rows ON audit_logs;
CREATE TRIGGER audit_logs_immutable_rows
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION dmobs_audit_logs_immutable();

DROP TRIGGER IF EXISTS audit_logs_no_truncate ON audit_logs;
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION dmobs_audit_logs_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_logs_no_truncate ON audit_logs;
DROP TRIGGER IF EXISTS audit_logs_immutable_rows ON audit_logs;
DROP FUNCTION IF EXISTS dmobs_audit_logs_immutable();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # No params: the '%' in RAISE must reach PostgreSQL as it is.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(CREATE)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("dmobs", "0001_initial")]

    operations = [
        migrations.RunPython(install, uninstall, hints={"target_model": "auditlog"}),
    ]
