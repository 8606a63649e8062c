"""audit_digests (issue 18): the signed digests of the tamper evidence.

Append-only like audit_logs: on PostgreSQL, triggers reject UPDATE, DELETE and
TRUNCATE in SQL (the ORM refuses already). Other backends create the table only.
"""

from django.db import migrations, models

import dmobs.fields
import dmobs.ids

CREATE = """
CREATE OR REPLACE FUNCTION dmobs_audit_digests_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_digests is append-only: % is not allowed (digests are permanent)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp;

DROP TRIGGER IF EXISTS audit_digests_immutable_rows ON audit_digests;
CREATE TRIGGER audit_digests_immutable_rows
    BEFORE UPDATE OR DELETE ON audit_digests
    FOR EACH ROW EXECUTE FUNCTION dmobs_audit_digests_immutable();

DROP TRIGGER IF EXISTS audit_digests_no_truncate ON audit_digests;
CREATE TRIGGER audit_digests_no_truncate
    BEFORE TRUNCATE ON audit_digests
    FOR EACH STATEMENT EXECUTE FUNCTION dmobs_audit_digests_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_digests_no_truncate ON audit_digests;
DROP TRIGGER IF EXISTS audit_digests_immutable_rows ON audit_digests;
DROP FUNCTION IF EXISTS dmobs_audit_digests_immutable();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(CREATE)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("dmobs", "0006_i12_facets_hardening"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditDigest",
            fields=[
                (
                    "id",
                    dmobs.fields.ObjectIdHexField(
                        default=dmobs.ids.new_object_id,
                        editable=False,
                        max_length=24,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("seq", models.PositiveBigIntegerField(unique=True)),
                ("kind", models.CharField(max_length=16)),
                ("sealed_at", models.DateTimeField(db_column="sealedAt")),
                ("after", models.DateTimeField(blank=True, null=True)),
                ("through", models.DateTimeField(blank=True, null=True)),
                ("count", models.PositiveBigIntegerField()),
                ("key_id", models.CharField(db_column="keyId", max_length=16)),
                (
                    "header",
                    models.TextField(help_text="The signed header, as signed (canonical JSON)."),
                ),
                ("signature", models.TextField()),
                (
                    "rotation_signature",
                    models.TextField(blank=True, db_column="rotationSignature", null=True),
                ),
                ("groups", models.TextField(help_text="JSON: {tenantId: 'id hash' lines}")),
            ],
            options={
                "db_table": "audit_digests",
                "ordering": ("seq",),
            },
        ),
        migrations.RunPython(install, uninstall, hints={"target_model": "auditdigest"}),
    ]
