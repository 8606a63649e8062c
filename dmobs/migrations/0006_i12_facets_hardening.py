"""The facets trigger function runs as its owner: qualify every name, pin search_path.

``dmobs_audit_facets_add()`` is SECURITY DEFINER (0005) so that a role with
INSERT on audit_logs only (the app, the platform's Node services) can append
entries. It wrote to the unqualified ``audit_facets`` with the search path of
the migration (``"$user", public``), and PostgreSQL looks in the session's
temporary schema before that unless ``pg_temp`` is named: an app role could
create a temporary ``audit_facets`` with a trigger, and the insert ran that
trigger as the table owner (issue 12, finding 1).

Now every relation the body names carries its schema (the one audit_logs is
in), the transition table ``new_rows`` is an ephemeral relation (found before
any schema is searched), and search_path is ``pg_catalog, pg_temp``: the
temporary schema last, so none of the caller's tables, functions or operators
can stand in for the system's. ``dmobs_audit_logs_immutable()`` (an ordinary
function that only raises) gets the same search_path.
"""

from django.db import migrations

FACET_COLUMNS = '"tenantId", "actorId", action, "resourceType", "actorType"'

FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.dmobs_audit_facets_add() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Sorted, so concurrent inserters take the unique-index locks in one order.
    INSERT INTO {schema}.audit_facets
        ("tenantId", "actorId", action, "resourceType", "actorType", "actorName")
    SELECT DISTINCT ON ({columns}) {columns}, "actorName"
    FROM new_rows
    ORDER BY {columns}
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION {schema}.dmobs_audit_facets_add() FROM PUBLIC;
ALTER FUNCTION {schema}.dmobs_audit_logs_immutable() SET search_path = pg_catalog, pg_temp;
"""

SCHEMA = """
SELECT n.nspname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = 'audit_logs'::regclass
"""


def forward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA)
        (schema,) = cursor.fetchone()
        cursor.execute(
            FUNCTION.format(schema=connection.ops.quote_name(schema), columns=FACET_COLUMNS)
        )


class Migration(migrations.Migration):
    dependencies = [("dmobs", "0006_i17_llm_calls_and_spend_caps")]

    operations = [
        # Backwards there is nothing to undo: the hardened function does what
        # 0005's did, for every caller that is not attacking it.
        migrations.RunPython(
            forward, migrations.RunPython.noop, hints={"target_model": "auditlog"}
        ),
    ]
