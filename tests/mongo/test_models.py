"""AuditLog on MongoDB: documents written by the Node services load as model
instances, the id is a native ObjectId stored as ``_id``, and entries are
permanent through every ORM path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId
from django.db import connections

from dmobs.models import AuditLog, PermanentEntryError
from tests.mongo.conftest import minutes_ago, node_document

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


def test_audit_log_is_routed_to_the_mongodb_alias():
    assert connections["audit"].vendor == "mongodb"
    assert AuditLog.objects.db == "audit"
    assert AuditLog._meta.pk.column == "_id"


def test_node_written_document_loads_with_hex_id_and_aware_utc_time(audit_collection):
    created = minutes_ago(5)
    doc = node_document(created_at=created)
    audit_collection.insert_one(doc)

    entry = AuditLog.objects.get(id=str(doc["_id"]))

    assert entry.id == str(doc["_id"])
    assert isinstance(entry.id, str) and len(entry.id) == 24
    assert entry.created_at == created
    assert entry.created_at.tzinfo is not None
    assert entry.tenant_id == "tenant-acme"
    assert (entry.actor_type, entry.actor_id, entry.actor_name) == (
        "agent",
        "agent-node-1",
        "Outreach agent",
    )
    assert (entry.action, entry.resource_type, entry.resource_id, entry.resource_name) == (
        "sent",
        "deliverable",
        "dlv-1",
        "Weekly digest",
    )
    assert entry.before == {"status": "draft"}
    assert entry.after == {"status": "sent"}
    assert entry.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_missing_optional_fields_load_as_none(audit_collection):
    doc = node_document(
        tenant_id=None, omit=("resourceName", "before", "after", "traceId"), action="logged_in"
    )
    audit_collection.insert_one(doc)

    entry = AuditLog.objects.get(pk=str(doc["_id"]))

    assert entry.tenant_id is None and entry.is_platform
    assert entry.resource_name is None
    assert entry.before is None and entry.after is None
    assert entry.trace_id is None
    assert AuditLog.objects.filter(tenant_id__isnull=True).count() == 1


def test_orm_insert_stores_objectid_id_and_bson_date(audit_collection):
    created = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
    entry = AuditLog.objects.create(
        tenant_id="tenant-acme",
        actor_type="human",
        actor_id="user-sarah",
        actor_name="Sarah Admin",
        action="approved",
        resource_type="strategy",
        resource_id="st-1",
        description="Sarah Admin approved the strategy",
        created_at=created,
    )

    raw = audit_collection.find_one({"_id": ObjectId(entry.id)})
    assert raw is not None
    assert "id" not in raw
    assert raw["createdAt"] == created.replace(tzinfo=None)  # BSON dates are UTC
    assert raw["actorName"] == "Sarah Admin"


def test_lookups_by_id_use_objectids(audit_collection):
    docs = [node_document(created_at=minutes_ago(i)) for i in range(3)]
    audit_collection.insert_many(docs)
    ids = sorted(str(d["_id"]) for d in docs)

    assert AuditLog.objects.filter(id__in=ids).count() == 3
    assert [e.id for e in AuditLog.objects.filter(id__lt=ids[2]).order_by("id")] == ids[:2]
    assert not AuditLog.objects.filter(id="not-an-object-id").exists()
    assert not AuditLog.objects.filter(id="0" * 24).exists()


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(lambda qs, e: qs.update(action="deleted"), id="queryset.update"),
        pytest.param(lambda qs, e: qs.delete(), id="queryset.delete"),
        pytest.param(lambda qs, e: qs.filter(pk=e.pk).delete(), id="filtered.delete"),
        pytest.param(lambda qs, e: qs.bulk_update([e], ["action"]), id="bulk_update"),
        pytest.param(
            lambda qs, e: qs.update_or_create(pk=e.pk, defaults={"action": "x"}),
            id="update_or_create",
        ),
        pytest.param(lambda qs, e: e.delete(), id="instance.delete"),
        pytest.param(lambda qs, e: e.save(), id="instance.save"),
    ],
)
def test_entries_are_permanent(audit_collection, attempt):
    doc = node_document()
    audit_collection.insert_one(doc)
    entry = AuditLog.objects.get(pk=str(doc["_id"]))

    with pytest.raises(PermanentEntryError):
        attempt(AuditLog.objects.all(), entry)

    stored = audit_collection.find_one({"_id": doc["_id"]})
    assert stored == {**doc, "createdAt": doc["createdAt"].replace(tzinfo=None)}
