"""Let an insert-only app role insert entries on PostgreSQL.

The statement trigger that keeps ``audit_facets`` complete (0003) ran with the
privileges of whoever inserted into audit_logs. The recommended app role
(docs/SECURITY.md) may only SELECT and INSERT on audit_logs, so its inserts
failed with "permission denied for table audit_facets". The function now runs
as its owner (SECURITY DEFINER) with its search_path pinned to the schema the
migration ran in, so a caller cannot redirect it to tables of their own.
"""

from django.db import migrations

FORWARD = """
ALTER FUNCTION dmobs_audit_facets_add() SECURITY DEFINER;
ALTER FUNCTION dmobs_audit_facets_add() SET search_path FROM CURRENT;
REVOKE ALL ON FUNCTION dmobs_audit_facets_add() FROM PUBLIC;
"""

BACKWARD = """
ALTER FUNCTION dmobs_audit_facets_add() SECURITY INVOKER;
ALTER FUNCTION dmobs_audit_facets_add() RESET search_path;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("dmobs", "0004_merge_facets_and_mongodb_indexes")]

    operations = [
        migrations.RunPython(forward, backward, hints={"target_model": "auditlog"}),
    ]
