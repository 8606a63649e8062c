"""The activity pipeline and tenant health, derived from ``audit_logs``.

The platform records every step of an activity as an audit entry
(``resourceType`` ``activity``: ``created``, ``started``, ``completed`` into
``awaiting_approval``, ``approved``/``rejected``/``auto_activated``,
``failed``; ``deliverable``: ``published``/``sent``, with ``after.activityId``),
plans on tenants, and agent configurations (``agent_config``). This collector
reads those, never the whole table:

1. One range read of the activity and deliverable entries of the last
   ``DMOBS_HITL_WINDOW_DAYS`` (7) days on the ``createdAt`` index, fetching
   only the JSON keys it needs (``after.status``, ``after.agentRole``,
   ``after.deliverableType``, ``after.activityId``, ``after.periodStart``).
   From it: each activity's latest status (24 h window for the status panel),
   the HITL backlog (latest status ``awaiting_approval``) and its oldest wait
   per tenant, failure counts by agent role and deliverable type (24 h),
   activities per tenant (24 h) and pipeline durations (7 days).
2. Per tenant of the ``Tenant`` table (bounded by ``DMOBS_METRICS_MAX_TENANTS``):
   one ``EXISTS`` probe on the (tenantId, createdAt) index for "active in the
   last 30 days", and the latest 50 ``agent_config`` entries on the
   (tenantId, resourceType, createdAt) index for scheduled agents. On
   PostgreSQL with the audit log beside the tenants this is one statement
   (``TENANT_SQL``); elsewhere two small queries per tenant.

An activity whose whole life lies before the window is not seen: the window
is a product decision (auto-activation ends any wait after 48 h by default,
so an activity waiting longer than 7 days is an incident of its own).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import F
from django.db.models.fields.json import KeyTextTransform
from prometheus_client.core import GaugeMetricFamily, Metric

from dmobs.collectors.base import CachedCollector
from dmobs.models import AuditLog, Tenant

STATUSES = ("created", "in_progress", "awaiting_approval", "completed", "failed")
# after.status as the platform writes it -> the dashboard's status.
STATUS_OF = {
    "created": "created",
    "queued": "created",
    "running": "in_progress",
    "in_progress": "in_progress",
    "awaiting_approval": "awaiting_approval",
    "approved": "completed",
    "active": "completed",
    "completed": "completed",
    "published": "completed",
    "sent": "completed",
    "failed": "failed",
    # A rejected activity goes back to its agent for another draft.
    "rejected": "in_progress",
}
# When an entry has no after.status: the action says it.
STATUS_OF_ACTION = {
    "created": "created",
    "started": "in_progress",
    "completed": "awaiting_approval",
    "approved": "completed",
    "auto_activated": "completed",
    "published": "completed",
    "sent": "completed",
    "failed": "failed",
    "rejected": "in_progress",
}
DELIVERED = frozenset({"published", "sent", "completed"})
UNKNOWN = "unknown"
ACTIVE_DAYS = 30
CONFIG_ENTRIES = 50

# PostgreSQL, audit_logs beside the tenants: every tenant's probes in one
# statement (a round trip per tenant cost more than the probes themselves).
TENANT_SQL = """
SELECT t.ref_id, t.active, c."resourceId", c.action, c.cron, c."createdAt", c.id
  FROM (SELECT ref_id,
               EXISTS (SELECT 1 FROM audit_logs a
                        WHERE a."tenantId" = dmobs_tenant.ref_id AND a."createdAt" >= %s) AS active
          FROM dmobs_tenant ORDER BY id LIMIT %s) t
  LEFT JOIN LATERAL (
        SELECT a."resourceId", a.action, a.after #>> '{schedule,cron}' AS cron,
               a."createdAt", a.id
          FROM audit_logs a
         WHERE a."tenantId" = t.ref_id AND a."resourceType" = 'agent_config'
         ORDER BY a."createdAt" DESC, a.id DESC
         LIMIT %s) c ON true
"""


def _status(action: str, status: str | None) -> str | None:
    if status in STATUS_OF:
        return STATUS_OF[status]
    return STATUS_OF_ACTION.get(action)


def _period_start(moment: datetime, text: str | None) -> datetime:
    """The start of the period a deliverable belongs to: after.periodStart, else its month."""
    if text:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        except ValueError:
            pass
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Lifecycle:
    by_status: Counter = field(default_factory=lambda: Counter(dict.fromkeys(STATUSES, 0)))
    backlog: Counter = field(default_factory=Counter)
    oldest: dict = field(default_factory=dict)
    volume: Counter = field(default_factory=Counter)
    runs: Counter = field(default_factory=Counter)  # (role, kind, outcome)
    dur_sum: dict = field(default_factory=lambda: defaultdict(float))
    dur_count: dict = field(default_factory=lambda: defaultdict(int))


class ActivityCollector(CachedCollector):
    name = "activity"

    def __init__(self, *, now=None):
        super().__init__()
        self._now = now  # a callable, for tests

    def now(self) -> datetime:
        return self._now() if self._now else datetime.now(UTC)

    def lifecycle_rows(self, since: datetime) -> list[tuple]:
        return list(
            AuditLog.objects.filter(
                created_at__gte=since, resource_type__in=("activity", "deliverable")
            )
            .order_by()
            .annotate(
                st=KeyTextTransform("status", "after"),
                role=KeyTextTransform("agentRole", "after"),
                kind=KeyTextTransform("deliverableType", "after"),
                act=KeyTextTransform("activityId", "after"),
                period=KeyTextTransform("periodStart", "after"),
            )
            .values_list(
                "tenant_id",
                "resource_type",
                "resource_id",
                "action",
                "created_at",
                "st",
                "role",
                "kind",
                "act",
                "period",
            )
        )

    @staticmethod
    def lifecycle_python(rows: list[tuple], now: datetime) -> Lifecycle:
        """The lifecycle numbers from the window's entries.

        Done here rather than by the database: the same aggregation in SQL
        (DISTINCT ON per activity, a CASE per row) measured 5-6 times the
        server time of this plain index range read at 1M entries.
        """
        day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
        rows = sorted(rows, key=lambda r: r[4])
        life = Lifecycle()
        latest: dict[str, tuple] = {}  # activity id -> (tenant, status, time)
        first_seen: dict[str, tuple] = {}  # activity id -> (tenant, time)
        for tenant, rtype, rid, action, created, status, role, kind, act, period in rows:
            if rtype == "deliverable":
                if action in DELIVERED and act:
                    latest[act] = (tenant, "completed", created)
                    if created >= week_ago:
                        started = _period_start(created, period)
                        key = tenant or "platform"
                        life.dur_sum[key] += max(0.0, (created - started).total_seconds())
                        life.dur_count[key] += 1
                continue
            mapped = _status(action, status)
            if mapped is None:
                continue
            first_seen.setdefault(rid, (tenant, created))
            latest[rid] = (tenant, mapped, created)
            if created >= day_ago and action in ("completed", "failed"):
                outcome = "failed" if action == "failed" else "ok"
                life.runs[(role or UNKNOWN, kind or UNKNOWN, outcome)] += 1
        for tenant, status, when in latest.values():
            if when >= day_ago:
                life.by_status[status] += 1
            if status == "awaiting_approval":
                key = tenant or "platform"
                life.backlog[key] += 1
                life.oldest[key] = max(life.oldest.get(key, 0.0), (now - when).total_seconds())
        for tenant, when in first_seen.values():
            if when >= day_ago:
                life.volume[tenant or "platform"] += 1
        return life

    def read(self) -> list[Metric]:
        from django.conf import settings

        now = self.now()
        since = now - timedelta(days=settings.DMOBS_HITL_WINDOW_DAYS)
        life = self.lifecycle_python(self.lifecycle_rows(since), now)
        by_status, backlog, oldest = life.by_status, life.backlog, life.oldest
        volume, runs = life.volume, life.runs
        durations = {t: (life.dur_sum[t], life.dur_count[t]) for t in life.dur_count}

        families: list[Metric] = []
        g = GaugeMetricFamily(
            "dmobs_activities",
            "Activities touched in the last 24 h, by their latest status.",
            labels=["status"],
        )
        for status in STATUSES:
            g.add_metric([status], by_status[status])
        families.append(g)

        tenants = self.tenants()
        g_backlog = GaugeMetricFamily(
            "dmobs_activities_awaiting_approval",
            "HITL backlog: activities whose latest step left them awaiting a person's approval.",
            labels=["tenant"],
        )
        g_oldest = GaugeMetricFamily(
            "dmobs_activity_oldest_awaiting_approval_seconds",
            "How long the oldest activity awaiting approval has waited (0 when none).",
            labels=["tenant"],
        )
        g_volume = GaugeMetricFamily(
            "dmobs_activities_started_24h",
            "Activities created or started in the last 24 h, by tenant.",
            labels=["tenant"],
        )
        known = [t["ref_id"] for t in tenants]
        for tenant in sorted(set(known) | set(backlog)):
            g_backlog.add_metric([tenant], backlog.get(tenant, 0))
            g_oldest.add_metric([tenant], oldest.get(tenant, 0.0))
        for tenant in sorted(set(known) | set(volume)):
            g_volume.add_metric([tenant], volume.get(tenant, 0))
        families += [g_backlog, g_oldest, g_volume]

        g_runs = GaugeMetricFamily(
            "dmobs_activity_runs_24h",
            "Agent runs of activities that ended in the last 24 h, by agent role, "
            "deliverable type and outcome (ok: sent for approval; failed).",
            labels=["agent_role", "deliverable_type", "outcome"],
        )
        pairs = {(role, kind) for role, kind, _ in runs}
        for role, kind in sorted(pairs):
            for outcome in ("ok", "failed"):
                g_runs.add_metric([role, kind, outcome], runs.get((role, kind, outcome), 0))
        families.append(g_runs)

        g_dur_sum = GaugeMetricFamily(
            "dmobs_activity_pipeline_duration_seconds_sum",
            "Deliverables completed in the last 7 days: sum of the times from their "
            "period's start to completion.",
            labels=["tenant"],
        )
        g_dur_count = GaugeMetricFamily(
            "dmobs_activity_pipeline_duration_seconds_count",
            "Deliverables completed in the last 7 days.",
            labels=["tenant"],
        )
        for tenant in sorted(set(known) | set(durations)):
            total, count = durations.get(tenant, (0.0, 0))
            g_dur_sum.add_metric([tenant], total)
            g_dur_count.add_metric([tenant], count)
        families += [g_dur_sum, g_dur_count]
        families += self.tenant_families(tenants, now)
        return families

    # --- tenants ---------------------------------------------------------------
    def tenants(self) -> list[dict]:
        from django.conf import settings

        limit = settings.DMOBS_METRICS_MAX_TENANTS
        return list(Tenant.objects.order_by("id").values("ref_id", "slug", "name", "plan")[:limit])

    def config_entries(self, tenant_id: str) -> list[tuple]:
        return list(
            AuditLog.objects.filter(tenant_id=tenant_id, resource_type="agent_config")
            .order_by("-created_at", "-id")
            .annotate(cron=KeyTextTransform("cron", KeyTextTransform("schedule", F("after"))))
            .values_list("resource_id", "action", "cron")[:CONFIG_ENTRIES]
        )

    @staticmethod
    def scheduled_agents(entries: list[tuple]) -> int:
        """Agents whose latest configuration (entries newest first) runs on a schedule."""
        state: dict[str, str] = {}  # agent -> "on" | "off" | "enabled" (newest first)
        scheduled = set()
        for agent, action, cron in entries:
            if agent in state and state[agent] != "enabled":
                continue
            if state.get(agent) == "enabled":
                # Enabled later: it runs on the latest configuration before that.
                if action in ("enabled", "disabled"):
                    continue
                if cron and action != "deleted":
                    scheduled.add(agent)
                    state[agent] = "on"
                else:
                    state[agent] = "off"
                continue
            if action in ("deleted", "disabled"):
                state[agent] = "off"
            elif action == "enabled":
                state[agent] = "enabled"
            elif cron:
                state[agent] = "on"
                scheduled.add(agent)
            else:
                state[agent] = "off"
        return len(scheduled)

    def tenant_probes(self, tenants: list[dict], since: datetime) -> dict[str, tuple]:
        """{tenant: (active since ``since``, latest agent_config entries newest first)}."""
        from django.conf import settings
        from django.db import connections, router

        alias = router.db_for_read(AuditLog)
        if alias == router.db_for_read(Tenant) and connections[alias].vendor == "postgresql":
            probes: dict[str, tuple] = {}
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    TENANT_SQL, [since, settings.DMOBS_METRICS_MAX_TENANTS, CONFIG_ENTRIES]
                )
                rows = cursor.fetchall()
            rows.sort(key=lambda r: (r[5] is not None, r[5], r[6]), reverse=True)  # newest first
            for ref, is_active, agent, action, cron, _, _ in rows:
                _, entries = probes.setdefault(ref, (is_active, []))
                if agent is not None:
                    entries.append((agent, action, cron))
            return probes
        return {
            t["ref_id"]: (
                AuditLog.objects.filter(tenant_id=t["ref_id"], created_at__gte=since).exists(),
                self.config_entries(t["ref_id"]),
            )
            for t in tenants
        }

    def tenant_families(self, tenants: list[dict], now: datetime) -> list[Metric]:

        info = GaugeMetricFamily(
            "dmobs_tenant_info",
            "One series per tenant (always 1), to put slugs and plans on the other series.",
            labels=["tenant", "slug", "plan"],
        )
        active = GaugeMetricFamily(
            "dmobs_tenant_active",
            f"1 when the tenant has an audit entry in the last {ACTIVE_DAYS} days.",
            labels=["tenant", "plan"],
        )
        by_plan = GaugeMetricFamily(
            "dmobs_tenants_active",
            f"Tenants with an audit entry in the last {ACTIVE_DAYS} days, by plan.",
            labels=["plan"],
        )
        scheduled = GaugeMetricFamily(
            "dmobs_tenant_scheduled_agents",
            "Agents whose latest configuration runs on a schedule (0: no recurring tasks).",
            labels=["tenant"],
        )
        since = now - timedelta(days=ACTIVE_DAYS)
        plans: Counter = Counter()
        for plan in Tenant.Plan.values:
            plans[plan] = 0
        probes = self.tenant_probes(tenants, since)
        for t in tenants:
            ref, plan = t["ref_id"], t["plan"]
            info.add_metric([ref, t["slug"], plan], 1)
            is_active, entries = probes.get(ref, (False, []))
            active.add_metric([ref, plan], int(is_active))
            plans[plan] += int(is_active)
            scheduled.add_metric([ref], self.scheduled_agents(entries))
        for plan, count in sorted(plans.items()):
            by_plan.add_metric([plan], count)
        return [info, active, by_plan, scheduled]
