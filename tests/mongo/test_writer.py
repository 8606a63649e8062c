"""The audit writer on MongoDB: audit_log() round-trips through the threaded
writer, inserts are unordered batches, and a replayed entry that is already
stored is skipped (duplicate key), while any other write error is raised."""

from __future__ import annotations

import pytest
from bson import ObjectId
from pymongo.errors import BulkWriteError

from dmobs.audit import audit_log, flush
from dmobs.audit.spool import Spool
from dmobs.audit.stores import select_store
from dmobs.audit.stores.mongo import MongoStore, insert_ignoring_duplicates
from dmobs.audit.writer import AuditWriter, get_writer
from dmobs.models import AuditLog
from tests.mongo.conftest import minutes_ago, writer_entry

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


def test_the_writer_uses_the_mongodb_store():
    assert isinstance(select_store(), MongoStore)


def test_audit_log_round_trips_through_the_threaded_writer(settings, audit_collection):
    settings.AUDIT_WRITER_MODE = "thread"
    ids = [
        audit_log(
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
            after={"status": "approved", "n": i},
        )
        for i in range(25)
    ]
    assert type(get_writer()) is AuditWriter
    assert flush(timeout=20)

    entries = {e.id: e for e in AuditLog.objects.filter(id__in=ids)}
    assert set(entries) == set(ids)
    assert entries[ids[7]].after == {"status": "approved", "n": 7}
    assert entries[ids[7]].resource_name == "Plan 7"
    assert len(entries[ids[7]].trace_id) == 32
    raw = audit_collection.find_one({"_id": ObjectId(ids[0])})
    assert raw["tenantId"] == "tenant-acme" and raw["resourceId"] == "st-0"


def test_store_writes_in_unordered_batches(audit_collection):
    entries = [writer_entry(i, created_at=minutes_ago(i)) for i in range(25)]
    assert MongoStore(batch_size=10).write(entries) == 25
    assert audit_collection.count_documents({}) == 25


def test_writing_entries_again_is_a_no_op_for_those_already_stored(audit_collection):
    first = [writer_entry(i) for i in range(5)]
    store = MongoStore()
    store.write(first)
    again = [*first[2:], *(writer_entry(i) for i in range(5, 8))]

    assert store.write(again) == 6

    assert audit_collection.count_documents({}) == 8
    assert AuditLog.objects.filter(id__in=[e["id"] for e in first + again]).count() == 8


def test_spool_replay_of_stored_entries_is_idempotent(tmp_path, audit_collection):
    entries = [writer_entry(i) for i in range(6)]
    store = MongoStore()
    store.write(entries[:3])  # stored before the process spooled them all
    spool = Spool(tmp_path / "spool")
    spool.append(entries)
    spool.close()
    writer = AuditWriter(store=store, spool=Spool(tmp_path / "spool"))

    report = writer.replay()

    assert report.replayed == 6
    assert not writer.spool.has_pending()
    assert audit_collection.count_documents({}) == 6


@pytest.fixture
def validated_collection():
    """A scratch collection that rejects documents without ``n`` (code 121)."""
    from django.db import connections

    database = connections["audit"].database
    collection = database.create_collection(
        "dmobs_scratch_validated", validator={"$jsonSchema": {"required": ["n"]}}
    )
    yield collection
    collection.drop()


def test_a_write_error_other_than_a_duplicate_is_raised(validated_collection):
    stored = {"_id": ObjectId(), "n": 1}
    validated_collection.insert_one(stored)
    with pytest.raises(BulkWriteError) as info:
        insert_ignoring_duplicates(validated_collection, [stored, {"_id": ObjectId()}])
    assert {e["code"] for e in info.value.details["writeErrors"]} == {11000, 121}


def test_duplicates_alone_are_reported_as_already_stored(audit_collection):
    docs = [{"_id": ObjectId(), "n": i} for i in range(3)]
    audit_collection.insert_many(docs[:2])
    assert insert_ignoring_duplicates(audit_collection, docs) == (1, 2)


def test_audit_replay_command_replays_into_mongodb(tmp_path, audit_collection):
    from django.core.management import call_command

    entries = [writer_entry(i) for i in range(4)]
    MongoStore().write(entries[:1])
    spool = Spool(tmp_path / "manual")
    spool.append(entries)
    spool.close()

    call_command("audit_replay", spool_dir=str(tmp_path / "manual"))

    assert audit_collection.count_documents({}) == 4
    assert not Spool(tmp_path / "manual").has_pending()
