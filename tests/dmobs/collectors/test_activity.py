"""The activity pipeline and tenant-health metrics, from audit entries made for each case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dmobs.collectors.activity import ActivityCollector
from dmobs.demo.events import new_trace_id
from dmobs.ids import new_object_id
from dmobs.models import AuditLog, Tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def entry(tenant, rtype, rid, action, hours_ago, after=None, actor_type="agent"):
    at = NOW - timedelta(hours=hours_ago)
    AuditLog.objects.create(
        id=new_object_id(timestamp=at.timestamp()),
        tenant_id=tenant,
        actor_type=actor_type,
        actor_id="a1",
        actor_name="Content Writer",
        action=action,
        resource_type=rtype,
        resource_id=rid,
        description="x",
        after=after,
        trace_id=new_trace_id(__import__("random").Random(rid + action)),
        created_at=at,
    )


def read() -> dict[tuple, float]:
    collector = ActivityCollector(now=lambda: NOW)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.read()
        for s in family.samples
    }


@pytest.fixture
def tenants():
    return {
        "a": Tenant.objects.create(ref_id="ta", slug="a", name="A", plan="pro"),
        "b": Tenant.objects.create(ref_id="tb", slug="b", name="B", plan="starter"),
        "c": Tenant.objects.create(ref_id="tc", slug="c", name="C", plan="starter"),
    }


def test_statuses_backlog_failures_volume_and_durations(tenants):
    w = {"agentRole": "writer", "deliverableType": "blog_article"}
    # act1 (a): whole life in the last day, delivered.
    entry("ta", "activity", "act1", "created", 20, {"status": "created", **w})
    entry("ta", "activity", "act1", "started", 19, {"status": "in_progress", **w})
    entry("ta", "activity", "act1", "completed", 18, {"status": "awaiting_approval", **w})
    entry("ta", "activity", "act1", "approved", 10, {"status": "approved"}, "human")
    entry(
        "ta",
        "deliverable",
        "dlv1",
        "published",
        9,
        {"activityId": "act1", "periodStart": "2026-11-01T00:00:00Z"},
    )
    # act2 (a): waiting for approval since 60 h: backlog and overdue.
    entry("ta", "activity", "act2", "completed", 60, {"status": "awaiting_approval", **w})
    # act3 (b): waiting since 2 h.
    entry("tb", "activity", "act3", "started", 3, {"status": "in_progress", **w})
    entry("tb", "activity", "act3", "completed", 2, {"status": "awaiting_approval", **w})
    # act4 (b): failed today, an outreach email sequence.
    o = {"agentRole": "outreach", "deliverableType": "email_sequence"}
    entry("tb", "activity", "act4", "started", 5, {"status": "in_progress", **o})
    entry("tb", "activity", "act4", "failed", 4, {"status": "failed", **o})
    # act5 (b): created only.
    entry("tb", "activity", "act5", "created", 1, {"status": "created", **o})
    # act6 (c): awaiting, but 20 days ago: outside the 14-day window.
    entry("tc", "activity", "act6", "completed", 20 * 24, {"status": "awaiting_approval", **w})
    # Without after.status, the action decides: started -> in progress.
    entry("tc", "activity", "act7", "started", 6)

    got = read()
    status = {k[1][0][1]: v for k, v in got.items() if k[0] == "dmobs_activities"}
    assert status == {
        "created": 1,
        "in_progress": 1,
        "awaiting_approval": 1,  # act3; act2's last step is older than 24 h
        "completed": 1,
        "failed": 1,
    }
    backlog = {
        k[1][0][1]: v for k, v in got.items() if k[0] == "dmobs_activities_awaiting_approval"
    }
    assert backlog == {"ta": 1, "tb": 1, "tc": 0}
    oldest = {
        k[1][0][1]: v
        for k, v in got.items()
        if k[0] == "dmobs_activity_oldest_awaiting_approval_seconds"
    }
    assert oldest == {"ta": pytest.approx(60 * 3600), "tb": pytest.approx(2 * 3600), "tc": 0}
    runs = {k[1]: v for k, v in got.items() if k[0] == "dmobs_activity_runs_24h"}
    assert runs == {
        (("agent_role", "writer"), ("deliverable_type", "blog_article"), ("outcome", "ok")): 2,
        (("agent_role", "writer"), ("deliverable_type", "blog_article"), ("outcome", "failed")): 0,
        (("agent_role", "outreach"), ("deliverable_type", "email_sequence"), ("outcome", "ok")): 0,
        (
            ("agent_role", "outreach"),
            ("deliverable_type", "email_sequence"),
            ("outcome", "failed"),
        ): 1,
    }
    started = {k[1][0][1]: v for k, v in got.items() if k[0] == "dmobs_activities_started_24h"}
    assert started == {"ta": 1, "tb": 3, "tc": 1}  # first seen in the last 24 h
    # Period start (Nov 1, 00:00) to delivery (Nov 20, 03:00).
    expected = (NOW - timedelta(hours=9) - datetime(2026, 11, 1, tzinfo=UTC)).total_seconds()
    assert got[("dmobs_activity_pipeline_duration_seconds_sum", (("tenant", "ta"),))] == (
        pytest.approx(expected)
    )
    assert got[("dmobs_activity_pipeline_duration_seconds_count", (("tenant", "ta"),))] == 1
    assert got[("dmobs_activity_pipeline_duration_seconds_count", (("tenant", "tb"),))] == 0


def test_active_tenants_by_plan_and_scheduled_agents(tenants):
    entry("ta", "session", "u1", "logged_in", 24 * 3, actor_type="human")
    entry("tb", "session", "u1", "logged_in", 24 * 40, actor_type="human")  # too long ago
    # a: one scheduled agent, one disabled after having a schedule, one deleted.
    cfg = {"schedule": {"cron": "0 9 * * 1-5"}}
    entry("ta", "agent_config", "ag1", "created", 100, cfg, "human")
    entry("ta", "agent_config", "ag2", "created", 90, cfg, "human")
    entry("ta", "agent_config", "ag2", "disabled", 80, {"enabled": False}, "human")
    entry("ta", "agent_config", "ag3", "created", 70, cfg, "human")
    entry("ta", "agent_config", "ag3", "deleted", 60, None, "human")
    # b: disabled then enabled again: its older configuration's schedule counts.
    entry("tb", "agent_config", "ag4", "updated", 50, cfg, "human")
    entry("tb", "agent_config", "ag4", "disabled", 40, {"enabled": False}, "human")
    entry("tb", "agent_config", "ag4", "enabled", 30, {"enabled": True}, "human")
    # c: an agent without a schedule.
    entry("tc", "agent_config", "ag5", "created", 20, {"model": "gpt-4o"}, "human")

    got = read()
    by_plan = {k[1][0][1]: v for k, v in got.items() if k[0] == "dmobs_tenants_active"}
    # a logged in 3 days ago; b 40 days ago, but its config entries are recent;
    # c has a config entry 20 h ago.
    assert by_plan == {"free": 0, "starter": 2, "pro": 1, "enterprise": 0}
    scheduled = {k[1][0][1]: v for k, v in got.items() if k[0] == "dmobs_tenant_scheduled_agents"}
    assert scheduled == {"ta": 1, "tb": 1, "tc": 0}
    info = {k[1] for k in got if k[0] == "dmobs_tenant_info"}
    assert (("plan", "pro"), ("slug", "a"), ("tenant", "ta")) in info


def test_a_read_is_a_fixed_number_of_queries_whatever_the_tenants(tenants):
    for i in range(20):
        Tenant.objects.create(ref_id=f"x{i}", slug=f"x{i}", name=f"X{i}", plan="free")
    with CaptureQueriesContext(connection) as queries:
        read()
    if connection.vendor == "postgresql":
        assert len(queries) == 3  # lifecycle range, tenants, one statement for all probes
    else:
        assert len(queries) == 2 + 2 * 23  # two small probes per tenant elsewhere
