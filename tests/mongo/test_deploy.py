"""Deploying on MongoDB: ``manage.py migrate --database audit`` as a real command
(a subprocess, system checks on, as a deploy runs it), and the container's
entrypoint, which must migrate the audit alias too."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
LIST_INDEXES = {
    "audit_created_idx",
    "audit_tenant_created_idx",
    "audit_tenant_actor_idx",
    "audit_tenant_action_idx",
    "audit_tenant_restype_idx",
    "audit_text_idx",
    "audit_resource_idx",
}


@pytest.fixture
def fresh_database(tmp_path):
    """A MongoDB database name nobody uses, dropped after; a SQLite default database."""
    uri = os.environ["MONGODB_URI"]
    name = f"dmobs_deploy_{uuid.uuid4().hex[:10]}"
    audit_url = urlunsplit(urlsplit(uri)._replace(path="/" + name))
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")},
        "DJANGO_SETTINGS_MODULE": "dmobs.settings",
        "SECRET_KEY": "deploy-test-only-" + uuid.uuid4().hex,
        "DMOBS_HTTPS": "false",
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "AUDIT_DATABASE_URL": audit_url,
        "AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    try:
        yield client[name], env
    finally:
        client.drop_database(name)
        client.close()


def _check_audit_database(db) -> None:
    assert set(db.list_collection_names()) == {"audit_logs", "audit_digests", "django_migrations"}
    indexes = {ix["name"] for ix in db["audit_logs"].list_indexes()}
    # Exactly: MongoDB's own _id index, the list and text indexes of dmobs.0003
    # and the trace index Django builds from Meta.indexes (a plain field).
    assert indexes == LIST_INDEXES | {"_id_", "audit_trace_idx"}


def test_migrate_audit_with_system_checks_on(fresh_database):
    db, env = fresh_database
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--database", "audit", "--no-input"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "mongodb.E001" not in output and "SystemCheckError" not in output
    _check_audit_database(db)
    # Nothing of the relational world on MongoDB (facets stay on the default database).
    applied = {m["name"] for m in db["django_migrations"].find({"app": "dmobs"})}
    assert "0003_audit_logs_mongodb_indexes" in applied


def test_container_entrypoint_migrates_the_audit_alias(fresh_database, tmp_path):
    db, env = fresh_database
    result = subprocess.run(
        ["sh", "ops/app/entrypoint.sh", sys.executable, "-c", "print('command ran')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("command ran")
    _check_audit_database(db)
    # The default database got the relational tables, audit_facets among them.
    import sqlite3

    with sqlite3.connect(tmp_path / "default.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"dmobs_user", "dmobs_tenant", "audit_facets"} <= tables
    assert "audit_logs" not in tables


def test_dockerfile_runs_the_entrypoint():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["sh", "ops/app/entrypoint.sh"]' in dockerfile
    script = (ROOT / "ops/app/entrypoint.sh").read_text()
    assert "migrate --database audit" in script
