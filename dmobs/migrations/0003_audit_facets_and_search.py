"""Performance at scale (issue 4).

1. ``audit_facets``: the distinct (tenant, actor, action, resource type)
   combinations of audit_logs, for the screens' filter choices. On PostgreSQL a
   statement-level AFTER INSERT trigger (transition table, so COPY and batched
   inserts pay once per statement, not per row) keeps it complete, and existing
   entries are backfilled here.
2. On PostgreSQL, ``pg_trgm`` and a trigram GIN index on the search expression
   of ``dmobs.search`` for free text.
3. On PostgreSQL, drop the ``varchar_pattern_ops`` twin of the primary key that
   Django adds for a CharField key: no query filters ids by LIKE, and it costs
   every insert an index update.

Other backends only get the (unmaintained) table; the screens do not read it there.
"""

from django.db import migrations, models

from dmobs.search import SEARCH_EXPRESSION, SEARCH_INDEX

FACET_COLUMNS = '"tenantId", "actorId", action, "resourceType", "actorType"'

INSTALL = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE UNIQUE INDEX audit_facets_uniq ON audit_facets ({FACET_COLUMNS}) NULLS NOT DISTINCT;

CREATE OR REPLACE FUNCTION dmobs_audit_facets_add() RETURNS trigger AS $$
BEGIN
    -- Sorted, so concurrent inserters take the unique-index locks in one order.
    INSERT INTO audit_facets ("tenantId", "actorId", action, "resourceType", "actorType", "actorName")
    SELECT DISTINCT ON ({FACET_COLUMNS}) {FACET_COLUMNS}, "actorName"
    FROM new_rows
    ORDER BY {FACET_COLUMNS}
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_logs_facets ON audit_logs;
CREATE TRIGGER audit_logs_facets
    AFTER INSERT ON audit_logs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dmobs_audit_facets_add();

INSERT INTO audit_facets ("tenantId", "actorId", action, "resourceType", "actorType", "actorName")
SELECT DISTINCT ON ({FACET_COLUMNS}) {FACET_COLUMNS}, "actorName"
FROM audit_logs
ORDER BY {FACET_COLUMNS}
ON CONFLICT DO NOTHING;

CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON audit_logs USING gin ({SEARCH_EXPRESSION} gin_trgm_ops);
"""

UNINSTALL = f"""
DROP INDEX IF EXISTS {SEARCH_INDEX};
DROP TRIGGER IF EXISTS audit_logs_facets ON audit_logs;
DROP FUNCTION IF EXISTS dmobs_audit_facets_add();
DROP INDEX IF EXISTS audit_facets_uniq;
"""

PATTERN_OPS_INDEXES = """
SELECT indexname FROM pg_indexes
WHERE tablename = 'audit_logs' AND indexdef LIKE '%%varchar_pattern_ops%%'
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(INSTALL)
        cursor.execute(PATTERN_OPS_INDEXES)
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(UNINSTALL)
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS audit_logs_id_like ON audit_logs (id varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("dmobs", "0002_audit_logs_immutable")]

    operations = [
        migrations.CreateModel(
            name="AuditFacet",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "tenant_id",
                    models.CharField(blank=True, db_column="tenantId", max_length=64, null=True),
                ),
                ("actor_type", models.CharField(db_column="actorType", max_length=10)),
                ("actor_id", models.CharField(db_column="actorId", max_length=64)),
                ("actor_name", models.CharField(db_column="actorName", max_length=200)),
                ("action", models.CharField(max_length=64)),
                ("resource_type", models.CharField(db_column="resourceType", max_length=64)),
            ],
            options={"db_table": "audit_facets"},
        ),
        migrations.RunPython(install, uninstall, hints={"target_model": "auditlog"}),
    ]
