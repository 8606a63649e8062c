"""Management commands that write entries, on MongoDB."""

from __future__ import annotations

import pytest
from bson import ObjectId
from django.core.management import call_command

from dmobs.models import AuditLog

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


def test_audit_load_inserts_objectid_documents(audit_collection):
    call_command("audit_load", rows=60, batch_size=25, tenants=2, verbosity=0)

    assert audit_collection.count_documents({}) == 60
    assert all(isinstance(d["_id"], ObjectId) for d in audit_collection.find({}, {"_id": 1}))
    newest = AuditLog.objects.first()
    assert len(newest.id) == 24 and newest.created_at.tzinfo is not None
