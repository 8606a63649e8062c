"""The PostgreSQL roles of docs/SECURITY.md, set up as documented and attacked.

A database of this module's own is created with an owner role that is not a
superuser; that role runs the migrations; the app role gets exactly the grants
of docs/SECURITY.md (the two ``sql`` blocks are read from the file and run
with the names substituted). Then the app role, connected as itself, tries
what issue 12 found:

1. (finding 1) a temporary ``audit_facets`` with a trigger of its own, so that
   the SECURITY DEFINER facets trigger of ``audit_logs`` would run that trigger
   as the owner and plant an owner-run helper that disables the immutability
   trigger, rewrites and deletes entries;
2. (finding 2) deleting, updating or truncating the facet rows the screens use.

Role names derive from the test database's name (roles are cluster-wide and
several worktrees share the server) and are dropped afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason="database roles: set DATABASE_URL=postgres://..."),
]

ENTRY_COLUMNS = (
    'id, "tenantId", "actorType", "actorId", "actorName", action, "resourceType", '
    '"resourceId", description, before, "createdAt"'
)


def documented_sql() -> dict[str, str]:
    """The ``sql`` blocks of docs/SECURITY.md's role section, by their first comment."""
    text = (ROOT / "docs" / "SECURITY.md").read_text()
    section = text[text.index("### The PostgreSQL roles") :]
    section = section[: section.index("\n### ", 1)]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    named = {}
    for block in blocks:
        first = block.splitlines()[0]
        assert first.startswith("-- "), f"an sql block of SECURITY.md starts with {first!r}"
        named[first[3:].split(":")[0]] = block
    assert set(named) == {"setup", "grants"}, named.keys()
    return named


@dataclass
class RolesDb:
    name: str
    owner: str
    app: str
    parts: object  # urlsplit of DATABASE_URL

    def url(self, role: str) -> str:
        host = self.parts.hostname or "127.0.0.1"
        port = self.parts.port or 5432
        return urlunsplit(self.parts._replace(netloc=f"{role}@{host}:{port}", path=f"/{self.name}"))

    def connect(self, role: str):
        import psycopg

        return psycopg.connect(self.url(role), autocommit=True)


def _substitute(sql: str, db: RolesDb) -> str:
    sql = re.sub(r"\bdmobs_owner\b", db.owner, sql)
    sql = re.sub(r"\bdmobs_app\b", db.app, sql)
    return re.sub(r"\bDATABASE dmobs\b", f"DATABASE {db.name}", sql)


@pytest.fixture(scope="module")
def roles_db() -> Iterator[RolesDb]:
    import psycopg

    parts = urlsplit(DATABASE_URL)
    base = parts.path.lstrip("/") or "dmobs"
    tag = secrets.token_hex(3)
    db = RolesDb(
        name=f"{base}_roles_{tag}", owner=f"{base}_owner_{tag}", app=f"{base}_app_{tag}",
        parts=parts,
    )  # fmt: skip
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    blocks = documented_sql()
    setup = _substitute(blocks["setup"], db)
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for statement in filter(None, (s.strip() for s in setup.split(";"))):
                conn.execute(statement)
            superuser = conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [db.owner]
            ).fetchone()
            assert superuser == (False,)
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "PYTEST_"))},
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": db.url(db.owner),
            },
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        with db.connect(db.owner) as conn:
            conn.execute(_substitute(blocks["grants"], db))
        yield db
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            for role in (db.app, db.owner):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _insert_entry(conn, *, actor: str, tenant: str = "t-roles", description: str = "kept") -> str:
    entry_id = secrets.token_hex(12)
    conn.execute(
        f"INSERT INTO public.audit_logs ({ENTRY_COLUMNS}) VALUES "
        "(%s, %s, 'human', %s, 'Ann', 'created', 'skill', 'sk-1', %s, "
        """'{"status": "draft"}', now())""",
        [entry_id, tenant, actor, description],
    )
    return entry_id


def _entries(conn) -> list[tuple]:
    return conn.execute(
        "SELECT id, md5(a::text) FROM public.audit_logs AS a ORDER BY id"
    ).fetchall()


ATTACK = """
CREATE TEMP TABLE audit_facets (LIKE public.audit_facets INCLUDING IDENTITY);
GRANT ALL ON pg_temp.audit_facets TO PUBLIC;  -- so the owner may write to it
CREATE TEMP TABLE new_rows (LIKE public.audit_logs);
INSERT INTO pg_temp.new_rows SELECT * FROM public.audit_logs LIMIT 1;
UPDATE pg_temp.new_rows SET "actorId" = 'planted-by-temp-new-rows';
CREATE FUNCTION pg_temp.plant() RETURNS trigger LANGUAGE plpgsql AS $plant$
BEGIN
    -- Runs as whoever inserts into this temporary table.
    EXECUTE format('CREATE TABLE IF NOT EXISTS public.i12_ran_as (who text)');
    EXECUTE format('INSERT INTO public.i12_ran_as VALUES (%L)', current_user);
    CREATE OR REPLACE FUNCTION public.i12_rewrite() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER AS $rewrite$
    BEGIN
        ALTER TABLE public.audit_logs DISABLE TRIGGER USER;
        UPDATE public.audit_logs SET description = 'rewritten';
        DELETE FROM public.audit_logs WHERE description = 'rewritten' AND "actorId" = 'victim';
        ALTER TABLE public.audit_logs ENABLE TRIGGER USER;
    END $rewrite$;
    GRANT EXECUTE ON FUNCTION public.i12_rewrite() TO PUBLIC;
    RETURN NULL;
END $plant$;
CREATE TRIGGER plant AFTER INSERT ON pg_temp.audit_facets
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.plant();
"""


def test_the_temporary_schema_attack_gains_the_app_role_nothing(roles_db):
    """Finding 1, replayed as the documented app role: the facet row lands in the
    real table, the app role gains nothing, every entry is unchanged."""
    import psycopg

    db = roles_db
    with db.connect(db.app) as app:
        _insert_entry(app, actor="victim", description="kept")
        _insert_entry(app, actor="bystander", description="kept too")
        before = _entries(app)

        app.execute(ATTACK)
        attacker_entry = _insert_entry(app, actor="attacker")

        # Use the helper, if the attack planted one.
        try:
            app.execute("SELECT public.i12_rewrite()")
            planted = True
        except psycopg.errors.UndefinedFunction:
            planted = False
        assert [row for row in _entries(app) if row[0] != attacker_entry] == before
        # Nothing was planted: no helper, no table written as someone else.
        assert not planted
        ran_as = app.execute("SELECT to_regclass('public.i12_ran_as')").fetchone()
        assert ran_as == (None,)

        # The facet row is in the real table; the temporary look-alike got nothing.
        facets = app.execute(
            'SELECT "actorId" FROM public.audit_facets WHERE "tenantId" = %s ORDER BY 1',
            ["t-roles"],
        ).fetchall()
        assert facets == [("attacker",), ("bystander",), ("victim",)]
        assert app.execute("SELECT count(*) FROM pg_temp.audit_facets").fetchone() == (0,)

        # Still only SELECT and INSERT on the audit data.
        for table in ("audit_logs", "audit_facets"):
            for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
                row = app.execute(
                    "SELECT has_table_privilege(current_user, %s, %s)",
                    [f"public.{table}", privilege],
                ).fetchone()
                assert row == (False,), (table, privilege)
        for sql in (
            "UPDATE public.audit_logs SET description = 'x'",
            "DELETE FROM public.audit_logs",
            "ALTER TABLE public.audit_logs DISABLE TRIGGER USER",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql)

        after = _entries(app)
    assert [row for row in after if row[0] != attacker_entry] == before
    with db.connect(db.owner) as owner:
        # The definer is pinned: temporary schema last, every name qualified.
        config = owner.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE proname = 'dmobs_audit_facets_add'"
        ).fetchone()
        assert config == (True, ["search_path=pg_catalog, pg_temp"])


def test_the_app_role_cannot_delete_the_facets(roles_db):
    """Finding 2, in the database: the app role's DELETE/UPDATE/TRUNCATE on the
    facets is refused, while appending entries (which adds facets) works."""
    import psycopg

    db = roles_db
    with db.connect(db.app) as app:
        _insert_entry(app, actor="facet-owner", tenant="t-facets")
        for sql in (
            "DELETE FROM public.audit_facets",
            "UPDATE public.audit_facets SET \"actorId\" = 'x'",
            "TRUNCATE public.audit_facets",
            "INSERT INTO public.audit_facets "
            '("tenantId", "actorType", "actorId", "actorName", action, "resourceType") '
            "VALUES ('t-facets', 'human', 'forged', 'F', 'created', 'skill')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql)
        rows = app.execute(
            'SELECT "actorId" FROM public.audit_facets WHERE "tenantId" = %s', ["t-facets"]
        ).fetchall()
    assert rows == [("facet-owner",)]


def test_the_app_runs_as_the_documented_role(roles_db):
    """The grants are enough for the product: audit_log() stores through the
    writer as the app role, and the screens' reads (entries, filter choices)
    work with SELECT only on the facets."""
    db = roles_db
    script = (
        "import django; django.setup()\n"
        "from dmobs.audit import audit_log, flush\n"
        "from dmobs.models import AuditLog, AuditFacet\n"
        "audit_log(tenant_id='t-app', actor_type='agent', actor_id='ag-1', actor_name='Bot',"
        " action='completed', resource_type='activity', resource_id='a-1',"
        " description='Bot completed a-1', after={'api_key': 'x'})\n"
        "flush()\n"
        "print(AuditLog.objects.filter(tenant_id='t-app').count(),"
        " AuditFacet.objects.filter(tenant_id='t-app').count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "PYTEST_"))},
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": db.url(db.app),
            "AUDIT_WRITER_MODE": "thread",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"], done.stdout + done.stderr
