"""The MongoDB tests run only against a MongoDB server: with ``MONGODB_URI`` set
and ``DJANGO_SETTINGS_MODULE=tests.settings_mongo`` (see that module). Otherwise
every test here is skipped, saying why."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from django.conf import settings

from dmobs.ids import new_object_id


def _skip_reason() -> str | None:
    if not os.environ.get("MONGODB_URI"):
        return (
            "MONGODB_URI is not set: the MongoDB tests need a server "
            "(tests/mongo/emulator.sh start prints the URI of a local emulator)"
        )
    engine = settings.DATABASES.get(settings.AUDIT_DB_ALIAS, {}).get("ENGINE", "")
    if engine != "django_mongodb_backend":
        return (
            "the audit alias is not MongoDB: run with DJANGO_SETTINGS_MODULE=tests.settings_mongo"
        )
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if reason is None:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def audit_collection():
    """The raw PyMongo collection behind AuditLog on the audit alias."""
    from django.db import connections

    return connections["audit"].get_collection("audit_logs")


def ms(value: datetime) -> datetime:
    """BSON dates keep milliseconds: compare times at that precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def node_document(
    *,
    created_at: datetime | None = None,
    tenant_id: str | None = "tenant-acme",
    omit: tuple[str, ...] = (),
    **fields,
) -> dict:
    """An audit document exactly as the platform's Node services write it:
    ObjectId ``_id`` (from the driver), camelCase names, a BSON date, and
    optional fields left out rather than set to null."""
    created_at = ms(created_at or datetime.now(UTC))
    doc = {
        "_id": fields.pop("_id", None) or ObjectId(),
        "tenantId": tenant_id,
        "actorType": "agent",
        "actorId": "agent-node-1",
        "actorName": "Outreach agent",
        "action": "sent",
        "resourceType": "deliverable",
        "resourceId": "dlv-1",
        "resourceName": "Weekly digest",
        "description": "Outreach agent sent the deliverable Weekly digest",
        "before": {"status": "draft"},
        "after": {"status": "sent"},
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "createdAt": created_at,
    }
    doc.update(fields)
    if tenant_id is None and "tenantId" not in omit:
        del doc["tenantId"]
    for name in omit:
        doc.pop(name, None)
    return doc


def writer_entry(i: int = 0, *, created_at: datetime | None = None, **overrides) -> dict:
    """An entry as audit_log() hands it to the writer (snake_case, hex id)."""
    created_at = ms(created_at or datetime.now(UTC))
    entry = dict(
        id=new_object_id(created_at.timestamp()),
        tenant_id="tenant-acme",
        actor_type="human",
        actor_id="user-sarah",
        actor_name="Sarah Admin",
        action="approved",
        resource_type="strategy",
        resource_id=f"st-{i}",
        resource_name=f"Plan {i}",
        description=f"Sarah Admin approved the strategy Plan {i}",
        before={"status": "draft"},
        after={"status": "approved"},
        trace_id="ab" * 16,
        created_at=created_at,
    )
    entry.update(overrides)
    return entry


def minutes_ago(n: float) -> datetime:
    return ms(datetime.now(UTC) - timedelta(minutes=n))
