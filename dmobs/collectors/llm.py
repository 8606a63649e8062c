"""LLM spend and tokens from the platform's ``llm_calls``, and the tenants' spend caps.

Fields read from each call (stored names, as the platform writes them):
``tenantId``, ``agentRole``, ``provider``, ``model``, ``inputTokens``,
``outputTokens``, ``costUsd`` (US dollars at the price in force when made),
``traceId`` (of the agent run), ``createdAt`` (UTC). See ``dmobs.models.LlmCall``;
with ``LLM_CALLS_DATABASE_URL`` they are read from the platform's database.

Every read is bounded by time on the ``createdAt`` index: the calls of this
calendar month (UTC) and of the last 7 days, never the whole history:

1. month to date, grouped by provider, model, tenant and agent role: cost,
   tokens in and out, calls. These are exported as counters that start again
   at 0 on the 1st of each month (``rate()``/``increase()`` read that like a
   restart), so a panel shows month-to-date spend and a rate shows spikes;
2. today (UTC) by the same labels: today's spend;
3. the last 7 days by tenant: the run rate that projects the month's spend;
4. today's 500 most expensive calls: the exemplars. Each cost series carries
   the trace id of its most expensive call today, so a spike in Grafana links
   to the agent run that caused it.

Spend caps (``SpendCap``: a tenant's own, else its plan's) are compared with the
month-to-date spend and the projection by Tenant Health and the
``TenantApproachingSpendCap`` alert.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Exemplar

from dmobs.collectors.base import CachedCollector
from dmobs.models import LlmCall, SpendCap, Tenant

LABELS = ("provider", "model", "tenant", "agent_role")
EXEMPLAR_CALLS = 500
PLATFORM = "platform"
OTHER = "other"


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def projected_month(spent: float, last_7_days: float, now: datetime) -> float:
    """Month-to-date spend plus the last 7 days' daily average for the rest of the month."""
    days = calendar.monthrange(now.year, now.month)[1]
    end = month_start(now) + timedelta(days=days)
    remaining = max(0.0, (end - now).total_seconds() / 86400)
    return spent + last_7_days / 7 * remaining


class LlmCollector(CachedCollector):
    name = "llm"

    def __init__(self, *, now=None):
        super().__init__()
        self._now = now

    def now(self) -> datetime:
        return self._now() if self._now else datetime.now(UTC)

    def read(self) -> list[Metric]:
        from django.conf import settings

        now = self.now()
        start = month_start(now)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        calls = LlmCall.objects.order_by()
        fields = ("provider", "model", "tenant_id", "agent_role")
        month = list(
            calls.filter(created_at__gte=start, created_at__lte=now)
            .values(*fields)
            .annotate(
                cost=Sum("cost_usd"),
                tokens_in=Sum("input_tokens"),
                tokens_out=Sum("output_tokens"),
                n=Count("id"),
            )
        )
        day = list(
            calls.filter(created_at__gte=today, created_at__lte=now)
            .values(*fields)
            .annotate(cost=Sum("cost_usd"))
        )
        week = dict(
            calls.filter(created_at__gte=now - timedelta(days=7), created_at__lte=now)
            .values("tenant_id")
            .annotate(cost=Sum("cost_usd"))
            .values_list("tenant_id", "cost")
        )
        expensive = list(
            calls.filter(created_at__gte=today, created_at__lte=now)
            .exclude(trace_id=None)
            .order_by("-cost_usd")
            .values_list(*fields, "trace_id", "cost_usd", "created_at")[:EXEMPLAR_CALLS]
        )

        # Bounded tenant labels: the biggest spenders by name, the rest "other".
        spend_by_tenant: dict[str | None, float] = defaultdict(float)
        for row in month:
            spend_by_tenant[row["tenant_id"]] += float(row["cost"] or 0)
        ranked = sorted(spend_by_tenant, key=lambda t: -spend_by_tenant[t])
        named = set(ranked[: settings.DMOBS_METRICS_MAX_TENANTS])

        def tenant_label(tenant_id):
            if not tenant_id:
                return PLATFORM
            return tenant_id if tenant_id in named else OTHER

        def key(row) -> tuple[str, str, str, str]:
            return (
                row["provider"],
                row["model"],
                tenant_label(row["tenant_id"]),
                row["agent_role"],
            )

        exemplars: dict[tuple, Exemplar] = {}
        for provider, model, tenant, role, trace, cost, created in expensive:
            k = (provider, model, tenant_label(tenant), role)
            if k not in exemplars:
                exemplars[k] = Exemplar({"trace_id": trace}, float(cost), created.timestamp())

        cost_total: dict[tuple, float] = defaultdict(float)
        tokens: dict[tuple, float] = defaultdict(float)
        count: dict[tuple, float] = defaultdict(float)
        for row in month:
            k = key(row)
            cost_total[k] += float(row["cost"] or 0)
            tokens[(row["provider"], row["model"], "input")] += row["tokens_in"] or 0
            tokens[(row["provider"], row["model"], "output")] += row["tokens_out"] or 0
            count[(row["provider"], row["model"])] += row["n"]
        cost_today: dict[tuple, float] = defaultdict(float)
        for row in day:
            cost_today[key(row)] += float(row["cost"] or 0)

        f_cost = CounterMetricFamily(
            "dmobs_llm_cost_usd",
            "LLM spend this calendar month (UTC; starts again at 0 on the 1st), "
            "from llm_calls.costUsd. Exemplar: trace id of today's most expensive call.",
            labels=list(LABELS),
        )
        for k, value in sorted(cost_total.items()):
            f_cost.add_metric(list(k), round(value, 6), exemplar=exemplars.get(k))
        f_today = GaugeMetricFamily(
            "dmobs_llm_cost_today_usd",
            "LLM spend since 00:00 UTC today.",
            labels=list(LABELS),
        )
        for k in sorted(cost_total):
            f_today.add_metric(list(k), round(cost_today.get(k, 0.0), 6))
        f_tokens = CounterMetricFamily(
            "dmobs_llm_tokens",
            "Tokens of LLM calls this calendar month, input (prompt) or output (completion).",
            labels=["provider", "model", "direction"],
        )
        for k, value in sorted(tokens.items()):
            f_tokens.add_metric(list(k), value)
        f_calls = CounterMetricFamily(
            "dmobs_llm_calls",
            "LLM calls this calendar month.",
            labels=["provider", "model"],
        )
        for k, value in sorted(count.items()):
            f_calls.add_metric(list(k), value)

        # Spend caps: every tenant of the Tenant table, with or without calls.
        caps_by_plan = {
            c.plan: float(c.monthly_usd) for c in SpendCap.objects.filter(plan__isnull=False)
        }
        caps_by_tenant = {
            ref: float(usd)
            for ref, usd in SpendCap.objects.filter(tenant__isnull=False).values_list(
                "tenant__ref_id", "monthly_usd"
            )
        }
        f_spent = GaugeMetricFamily(
            "dmobs_tenant_spend_month_usd",
            "LLM spend of the tenant this calendar month (UTC).",
            labels=["tenant"],
        )
        f_cap = GaugeMetricFamily(
            "dmobs_tenant_spend_cap_usd",
            "The tenant's monthly LLM spend cap (its own, else its plan's).",
            labels=["tenant"],
        )
        f_projected = GaugeMetricFamily(
            "dmobs_tenant_spend_projected_month_usd",
            "Month-to-date spend plus the last 7 days' daily average for the rest of the month.",
            labels=["tenant"],
        )
        limit = settings.DMOBS_METRICS_MAX_TENANTS
        for ref, plan in Tenant.objects.order_by("id").values_list("ref_id", "plan")[:limit]:
            spent = spend_by_tenant.get(ref, 0.0)
            f_spent.add_metric([ref], round(spent, 6))
            f_projected.add_metric(
                [ref], round(projected_month(spent, float(week.get(ref) or 0), now), 6)
            )
            cap = caps_by_tenant.get(ref, caps_by_plan.get(plan))
            if cap is not None:
                f_cap.add_metric([ref], cap)
        return [f_cost, f_today, f_tokens, f_calls, f_spent, f_cap, f_projected]
