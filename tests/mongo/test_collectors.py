"""The activity collector on the platform's own store: audit_logs in MongoDB,
written the way the Node services write them (nested ``after``, BSON dates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dmobs.collectors.activity import ActivityCollector
from dmobs.models import Tenant
from tests.mongo.conftest import node_document

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)

NOW = datetime.now(UTC).replace(microsecond=0)


def doc(tenant, rtype, rid, action, hours_ago, after):
    return node_document(
        tenant_id=tenant,
        resourceType=rtype,
        resourceId=rid,
        action=action,
        after=after,
        created_at=NOW - timedelta(hours=hours_ago),
    )


def test_lifecycle_and_tenant_metrics_from_node_documents(audit_collection):
    Tenant.objects.create(ref_id="tm", slug="m", name="M", plan="pro")
    w = {"agentRole": "writer", "deliverableType": "blog_article"}
    audit_collection.insert_many(
        [
            doc("tm", "activity", "a1", "started", 5, {"status": "in_progress", **w}),
            doc("tm", "activity", "a1", "completed", 4, {"status": "awaiting_approval", **w}),
            doc("tm", "activity", "a2", "started", 3, {"status": "in_progress", **w}),
            doc("tm", "activity", "a2", "failed", 2, {"status": "failed", **w}),
            doc("tm", "activity", "a3", "completed", 30, {"status": "awaiting_approval", **w}),
            doc("tm", "activity", "a3", "approved", 20, {"status": "approved"}),
            doc(
                "tm",
                "deliverable",
                "d3",
                "published",
                19,
                {"activityId": "a3", "periodStart": "2026-01-01T00:00:00Z"},
            ),
            doc("tm", "agent_config", "g1", "created", 50, {"schedule": {"cron": "0 9 * * 1"}}),
        ]
    )
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in ActivityCollector(now=lambda: NOW).read()
        for s in family.samples
    }
    status = {k[1][0][1]: v for k, v in got.items() if k[0] == "dmobs_activities"}
    assert status == {
        "created": 0,
        "in_progress": 0,
        "awaiting_approval": 1,
        "completed": 1,
        "failed": 1,
    }
    assert got[("dmobs_activities_awaiting_approval", (("tenant", "tm"),))] == 1
    assert got[("dmobs_activity_oldest_awaiting_approval_seconds", (("tenant", "tm"),))] == (
        pytest.approx(4 * 3600)
    )
    failed = ("agent_role", "writer"), ("deliverable_type", "blog_article"), ("outcome", "failed")
    assert got[("dmobs_activity_runs_24h", failed)] == 1
    assert got[("dmobs_activity_pipeline_duration_seconds_count", (("tenant", "tm"),))] == 1
    assert got[("dmobs_tenants_active", (("plan", "pro"),))] == 1
    assert got[("dmobs_tenant_scheduled_agents", (("tenant", "tm"),))] == 1
