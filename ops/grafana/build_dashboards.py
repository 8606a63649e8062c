"""Writes the Grafana dashboards of dmobs as JSON into ops/grafana/dashboards/.

The dashboards are code, built with Grafana's own typed SDK
(``grafana-foundation-sdk``, pinned in requirements-dev.txt to the build for
the Grafana that docker-compose.yml runs): edit this file and run
``make dashboards`` (the test suite fails when the committed JSON differs from
what this file writes). Every Prometheus expression here is evaluated against a
real Prometheus in tests/ops/test_prometheus.py; the metric names are the
contract in docs/METRICS.md.

Grafana variables used in expressions: ``$job`` (a dashboard variable) and
``$__rate_interval``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge as sdk_bargauge
from grafana_foundation_sdk.builders import common as sdk_common
from grafana_foundation_sdk.builders import dashboard as sdk
from grafana_foundation_sdk.builders import logs as sdk_logs
from grafana_foundation_sdk.builders import loki as sdk_loki
from grafana_foundation_sdk.builders import piechart as sdk_piechart
from grafana_foundation_sdk.builders import prometheus as sdk_prometheus
from grafana_foundation_sdk.builders import stat as sdk_stat
from grafana_foundation_sdk.builders import table as sdk_table
from grafana_foundation_sdk.builders import timeseries as sdk_timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as piechart_model
from grafana_foundation_sdk.models import prometheus as prometheus_model

OUT = Path(__file__).resolve().parent / "dashboards"

# The data sources' fixed uids (provisioning/datasources/datasources.yaml).
PROM = model.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = model.DataSourceRef(type_val="loki", uid="loki")
TEMPO = model.DataSourceRef(type_val="tempo", uid="tempo")

JOB = 'job=~"$job"'
# Uptime per service: the blackbox exporter's probes (ops/prometheus/blackbox.yml)
# of the seed's four services, each a `service` label of the probe jobs.
UPTIME_JOBS = 'job=~"uptime|uptime-api"'
UPTIME_SERVICES = ("API", "Dashboard", "DM Portal", "Manage")

Queries = list[tuple[str, str]]
Steps = list[tuple[float | None, str]]


class Layout:
    """Places panels left to right in rows of 24 grid units and numbers them.

    The SDK can place panels itself, but it lets a panel run past the right
    edge; this wraps first, so every panel keeps the place it always had."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, width: int, height: int) -> model.GridPos:
        if self.x + width > 24:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        pos = model.GridPos(x=self.x, y=self.y, w=width, h=height)
        self.x += width
        self.row_height = max(self.row_height, height)
        return pos

    def row(self, title: str) -> sdk.Row:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0
        row = (
            sdk.Row(title)
            .id(self.take_id())
            .collapsed(False)
            .grid_pos(model.GridPos(x=0, y=self.y, w=24, h=1))
        )
        self.y += 1
        return row

    def take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def target(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False
) -> sdk_prometheus.Dataquery:
    query = (
        sdk_prometheus.Dataquery()
        .datasource(PROM)
        .ref_id(ref)
        .expr(expr)
        .legend_format(legend or "__auto")
    )
    return query.instant() if instant else query.range()


def _targets(queries: Queries, instant: bool = False) -> list[sdk_prometheus.Dataquery]:
    return [
        target(expr, legend, chr(ord("A") + i), instant=instant)
        for i, (expr, legend) in enumerate(queries)
    ]


def _thresholds(steps: Steps) -> sdk.ThresholdsConfig:
    return (
        sdk.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def _last_value() -> sdk_common.ReduceDataOptions:
    return sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def _common(panel, layout: Layout, title: str, description: str, width: int, height: int):
    return (
        panel.id(layout.take_id())
        .title(title)
        .description(description)
        .grid_pos(layout.place(width, height))
        .datasource(PROM)
    )


def timeseries(
    layout: Layout,
    title: str,
    queries: Queries,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    exemplars: bool = False,
) -> sdk_timeseries.Panel:
    """``exemplars`` shows the histogram's exemplars (trace ids) on the panel:
    a click on a latency spike opens the trace that caused it (Prometheus data
    source -> Tempo, see provisioning/datasources)."""
    targets = _targets(queries)
    if exemplars:
        targets = [t.exemplar(True) for t in targets]
    stacking = common_model.StackingMode.NORMAL if stack else common_model.StackingMode.NONE
    return (
        _common(sdk_timeseries.Panel(), layout, title, description, width, height)
        .targets(targets)
        .unit(unit)
        .draw_style(common_model.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(15 if stack else 0)
        .stacking(sdk_common.StackingConfig().mode(stacking).group("A"))
        .show_points(common_model.VisibilityMode.NEVER)
        .legend(
            sdk_common.VizLegendOptions()
            .display_mode(common_model.LegendDisplayMode.TABLE)
            .placement(common_model.LegendPlacement.BOTTOM)
            .calcs(["mean", "max"])
        )
        .tooltip(
            sdk_common.VizTooltipOptions()
            .mode(common_model.TooltipDisplayMode.MULTI)
            .sort(common_model.SortOrder.DESCENDING)
        )
    )


def stat(
    layout: Layout,
    title: str,
    queries: Queries,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    thresholds: Steps | None = None,
    mappings: list[model.ValueMapping] | None = None,
) -> sdk_stat.Panel:
    return (
        _common(sdk_stat.Panel(), layout, title, description, width, height)
        .targets(_targets(queries, instant=True))
        .unit(unit)
        .thresholds(_thresholds(thresholds or [(None, "green")]))
        .mappings(mappings or [])
        .reduce_options(_last_value())
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .graph_mode(common_model.BigValueGraphMode.NONE)
        .text_mode(common_model.BigValueTextMode.AUTO)
    )


def up_down() -> list[model.ValueMapping]:
    """Shows 0 as DOWN and 1 as UP."""
    return [
        model.ValueMap(
            options={
                "0": model.ValueMappingResult(text="DOWN"),
                "1": model.ValueMappingResult(text="UP"),
            }
        )
    ]


def table(
    layout: Layout,
    title: str,
    queries: Queries,
    *,
    description: str = "",
    width: int = 12,
    height: int = 8,
    unit: str = "short",
) -> sdk_table.Panel:
    return (
        _common(sdk_table.Panel(), layout, title, description, width, height)
        .targets(
            [t.format(prometheus_model.PromQueryFormat.TABLE) for t in _targets(queries, True)]
        )
        .unit(unit)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .show_header(True)
    )


def logs(
    layout: Layout, title: str, expr: str, *, width: int = 24, height: int = 10
) -> sdk_logs.Panel:
    query = sdk_loki.Dataquery().datasource(LOKI).ref_id("A").expr(expr).query_type("range")
    return (
        sdk_logs.Panel()
        .id(layout.take_id())
        .title(title)
        .grid_pos(layout.place(width, height))
        .datasource(LOKI)
        .with_target(query)
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common_model.LogsSortOrder.DESCENDING)
    )


def job_variable() -> sdk.QueryVariable:
    return (
        sdk.QueryVariable("job")
        .label("Service")
        .datasource(PROM)
        .query({"query": "label_values(up, job)", "refId": "job"})
        .include_all(True)
        .multi(True)
        .all_value(".+")
        .current(model.VariableOption(text="All", value="$__all"))
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Builder],
    *,
    tags: list[str],
    variables: list[sdk.QueryVariable] | None = None,
) -> sdk.Dashboard:
    board = (
        sdk.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["dmobs", *tags])
        .timezone("utc")
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .version(1)
        .refresh("30s")
        .time("now-6h", "now")
        .variables(variables or [])
        .link(
            sdk.DashboardLink("dmobs dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["dmobs"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )
    for panel in panels:
        if isinstance(panel, sdk.Row):
            board.with_row(panel)
        else:
            board.with_panel(panel)
    return board


# --- System Health -------------------------------------------------------------------


def system_health() -> sdk.Dashboard:
    lay = Layout()
    # Counted by the outermost middleware: a 500 made by any layer is here.
    responses = "dmobs_http_responses_total"
    latency = "dmobs_http_request_duration_seconds_bucket"
    # Probes and scrapes (answered every few seconds) are left out of the 5xx share.
    served = 'route!~"healthz|readyz|metrics"'
    panels = [
        lay.row("Uptime"),
        *[
            stat(
                lay,
                service,
                [(f'min(probe_success{{{UPTIME_JOBS}, service="{service}"}})', service)],
                description=f"The blackbox exporter's probe of {service}'s health URL "
                "(ops/prometheus/prometheus.yml): green when it answers, red when not.",
                thresholds=[(None, "red"), (1, "green")],
                mappings=up_down(),
            )
            for service in UPTIME_SERVICES
        ],
        lay.row("Service"),
        stat(
            lay,
            "Up",
            [(f"min by (job) (up{{{JOB}}})", "{{job}}")],
            description="1 when Prometheus could scrape every target of the service.",
            thresholds=[(None, "red"), (1, "green")],
            mappings=up_down(),
        ),
        stat(
            lay,
            "Targets down",
            [(f"count(up{{{JOB}}} == 0) or vector(0)", "down")],
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            lay,
            "5xx share (5m)",
            [
                (
                    f'sum(rate({responses}{{{JOB}, {served}, status=~"5.."}}[5m]))'
                    f" / sum(rate({responses}{{{JOB}, {served}}}[5m])) or vector(0)",
                    "5xx",
                )
            ],
            unit="percentunit",
            description="Share of 5xx among responses (probes and scrapes left out).",
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        stat(
            lay,
            "Firing alerts",
            [('count(ALERTS{alertstate="firing"}) or vector(0)', "firing")],
            thresholds=[(None, "green"), (1, "red")],
        ),
        lay.row("Requests"),
        timeseries(
            lay,
            "5xx responses per second, per service (5m)",
            [
                (
                    f'sum by (job) (rate({responses}{{{JOB}, status=~"5.."}}[5m]))'
                    f" or sum by (job) (rate({responses}{{{JOB}}}[5m])) * 0",
                    "{{job}}",
                )
            ],
            unit="reqps",
            description="Zero, not 'no data', when a service answers without errors.",
        ),
        timeseries(
            lay,
            "Requests per second by status",
            [(f"sum by (status) (rate({responses}{{{JOB}}}[$__rate_interval]))", "{{status}}")],
            unit="reqps",
            stack=True,
        ),
        timeseries(
            lay,
            "Latency p50 per route",
            [
                (
                    f"histogram_quantile(0.50, sum by (le, route) (rate({latency}{{{JOB}}}[5m])))",
                    "{{route}}",
                )
            ],
            unit="s",
            width=8,
            exemplars=True,
        ),
        timeseries(
            lay,
            "Latency p95 per route",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, route) (rate({latency}{{{JOB}}}[5m])))",
                    "{{route}}",
                )
            ],
            unit="s",
            width=8,
            exemplars=True,
        ),
        timeseries(
            lay,
            "Latency p99 per route",
            [
                (
                    f"histogram_quantile(0.99, sum by (le, route) (rate({latency}{{{JOB}}}[5m])))",
                    "{{route}}",
                )
            ],
            unit="s",
            width=8,
            exemplars=True,
        ),
        timeseries(
            lay,
            "In-flight requests",
            [(f"sum by (job) (dmobs_http_requests_in_flight{{{JOB}}})", "{{job}}")],
            description="Requests being handled now, all gunicorn workers together.",
        ),
        timeseries(
            lay,
            "Exceptions per second by type",
            [
                (
                    f"sum by (type) (rate(dmobs_http_exceptions_total{{{JOB}}}[5m])) or vector(0)",
                    "{{type}}",
                )
            ],
            unit="reqps",
        ),
        lay.row("Audit write path"),
        stat(
            lay,
            "Queue depth",
            [(f"sum(dmobs_audit_queue_depth{{{JOB}}})", "queued")],
            description="Entries accepted by audit_log() and not yet written or spooled.",
            thresholds=[(None, "green"), (1000, "orange"), (10000, "red")],
        ),
        stat(
            lay,
            "Spool files waiting",
            [(f"max(dmobs_audit_spool_pending_files{{{JOB}}})", "files")],
            description="Non-zero while the audit store refuses writes (alert AuditSpoolNotEmpty).",
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            lay,
            "Oldest spool file",
            [(f"max(dmobs_audit_spool_oldest_age_seconds{{{JOB}}})", "age")],
            unit="s",
            thresholds=[(None, "green"), (60, "orange"), (900, "red")],
        ),
        stat(
            lay,
            "Spool errors (1h)",
            [(f"sum(increase(dmobs_audit_spool_errors_total{{{JOB}}}[1h])) or vector(0)", "")],
            description="Entries that could not even be spooled: see the error logs.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        timeseries(
            lay,
            "Entries per second: accepted, written, spooled, replayed",
            [
                (f"sum(rate(dmobs_audit_entries_accepted_total{{{JOB}}}[5m]))", "accepted"),
                (f"sum(rate(dmobs_audit_entries_written_total{{{JOB}}}[5m]))", "written"),
                (f"sum(rate(dmobs_audit_entries_spooled_total{{{JOB}}}[5m]))", "spooled"),
                (f"sum(rate(dmobs_audit_entries_replayed_total{{{JOB}}}[5m]))", "replayed"),
            ],
            unit="ops",
        ),
        timeseries(
            lay,
            "Queue depth and spooled entries",
            [
                (f"sum(dmobs_audit_queue_depth{{{JOB}}})", "queue depth"),
                (
                    f"sum(increase(dmobs_audit_entries_spooled_total{{{JOB}}}[5m]))",
                    "spooled (5m)",
                ),
                (f"max(dmobs_audit_spool_pending_bytes{{{JOB}}})", "spool bytes"),
            ],
        ),
        lay.row("Queues (BullMQ)"),
        timeseries(
            lay,
            "Jobs waiting per agent role (all tenants)",
            [
                (
                    f'sum by (queue) (dmobs_bullmq_jobs{{{JOB}, state=~"waiting|prioritized"}})',
                    "{{queue}}",
                )
            ],
            description="One BullMQ queue per agent role, read from Redis (dmobs.collectors).",
            stack=True,
        ),
        stat(
            lay,
            "Dead-letter queue: failed jobs",
            [(f"sum(dmobs_bullmq_dead_letter_jobs{{{JOB}}})", "failed")],
            description="Jobs in the queues' failed sets (alert DeadLetterQueueNotEmpty).",
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            lay,
            "Jobs active",
            [(f'sum(dmobs_bullmq_jobs{{{JOB}, state="active"}})', "active")],
        ),
        bargauge(
            lay,
            "Failed jobs per queue",
            [(f"sum by (queue) (dmobs_bullmq_dead_letter_jobs{{{JOB}}})", "{{queue}}")],
            thresholds=[(None, "green"), (1, "red")],
            width=12,
        ),
        timeseries(
            lay,
            "Jobs by state",
            [
                (
                    f'sum by (state) (dmobs_bullmq_jobs{{{JOB}, state=~"active|delayed|failed"}})',
                    "{{state}}",
                )
            ],
            width=12,
        ),
        lay.row("Logs"),
        logs(lay, "Errors", '{service=~".+", level=~"error|critical"}'),
    ]
    return dashboard(
        "dmobs-system-health",
        "System Health",
        "Is dmobs up, answering, fast, and is every audit entry getting stored?",
        panels,
        tags=["health"],
        variables=[job_variable()],
    )


# --- Audit activity --------------------------------------------------------------------


def audit_activity() -> sdk.Dashboard:
    lay = Layout()
    act = "dmobs_audit_activity_total"
    by_tenant = "dmobs_audit_activity_by_tenant_total"
    panels = [
        lay.row("Entries"),
        stat(
            lay,
            "Entries (24h)",
            [(f"sum(increase({act}{{{JOB}}}[24h]))", "entries")],
            width=6,
        ),
        stat(
            lay,
            "Agent share (24h)",
            [
                (
                    f'sum(increase({act}{{{JOB}, actor_type="agent"}}[24h]))'
                    f" / sum(increase({act}{{{JOB}}}[24h]))",
                    "agent",
                )
            ],
            unit="percentunit",
            width=6,
        ),
        stat(
            lay,
            "Failed actions (24h)",
            [(f'sum(increase({act}{{{JOB}, action="failed"}}[24h])) or vector(0)', "failed")],
            width=6,
            thresholds=[(None, "green"), (1, "orange")],
        ),
        stat(
            lay,
            "Exports (24h)",
            [(f"sum(increase(dmobs_audit_exports_total{{{JOB}}}[24h])) or vector(0)", "")],
            width=6,
        ),
        timeseries(
            lay,
            "Entries per minute by actor type",
            [
                (
                    f"sum by (actor_type) (rate({act}{{{JOB}}}[$__rate_interval])) * 60",
                    "{{actor_type}}",
                )
            ],
            unit="short",
            stack=True,
        ),
        timeseries(
            lay,
            "Entries per minute by action",
            [(f"sum by (action) (rate({act}{{{JOB}}}[$__rate_interval])) * 60", "{{action}}")],
            stack=True,
        ),
        timeseries(
            lay,
            "Entries per minute by tenant (top 10)",
            [
                (
                    "topk(10, sum by (tenant) "
                    f"(rate({by_tenant}{{{JOB}}}[$__rate_interval]))) * 60",
                    "{{tenant}}",
                )
            ],
            description=(
                "tenant is the tenant id; 'platform' = no tenant, 'other' = tenants past "
                "DMOBS_METRICS_MAX_TENANTS in a process (see docs/METRICS.md)."
            ),
            stack=True,
        ),
        timeseries(
            lay,
            "Entries per minute by resource type",
            [
                (
                    f"sum by (resource_type) (rate({act}{{{JOB}}}[$__rate_interval])) * 60",
                    "{{resource_type}}",
                )
            ],
            stack=True,
        ),
        table(
            lay,
            "Actions by actor type (24h)",
            [(f"sum by (actor_type, action) (increase({act}{{{JOB}}}[24h]))", "")],
        ),
        table(
            lay,
            "Tenants (24h)",
            [(f"sort_desc(sum by (tenant) (increase({by_tenant}{{{JOB}}}[24h])))", "")],
        ),
        lay.row("Exports"),
        timeseries(
            lay,
            "Exports per hour by app and format",
            [
                (
                    f"sum by (app, format) (increase(dmobs_audit_exports_total{{{JOB}}}[1h]))",
                    "{{app}} {{format}}",
                )
            ],
        ),
        timeseries(
            lay,
            "Exported rows per hour",
            [
                (
                    f"sum by (app, format) (increase(dmobs_audit_export_rows_total{{{JOB}}}[1h]))",
                    "{{app}} {{format}}",
                ),
                (
                    f'sum(increase({act}{{{JOB}, action="exported"}}[1h]))',
                    "audited 'exported' entries",
                ),
            ],
        ),
    ]
    return dashboard(
        "dmobs-audit-activity",
        "Audit activity",
        "Who does what, to which resources, in which tenants; and who exports the log.",
        panels,
        tags=["audit"],
        variables=[job_variable()],
    )


# --- The seed's platform dashboards (dmobs.collectors, /metrics/platform) ------------
# Sources: llm_calls (LLM Cost), audit_logs (Activity Pipeline, Tenant Health),
# spend caps; each metric's source is in docs/METRICS.md. ``with_slug`` puts the
# tenant's slug on a per-tenant series (``tenant`` is the ref id) for legends.

OVERDUE_SECONDS = 48 * 3600  # the auto-activation window; alert PipelineOverdue


def with_slug(expr: str) -> str:
    return f"({expr}) * on (tenant) group_left (slug) max by (tenant, slug) (dmobs_tenant_info)"


def piechart(
    layout: Layout,
    title: str,
    queries: Queries,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 8,
    height: int = 8,
) -> sdk_piechart.Panel:
    return (
        _common(sdk_piechart.Panel(), layout, title, description, width, height)
        .targets(_targets(queries, instant=True))
        .unit(unit)
        .reduce_options(_last_value())
        .pie_type(piechart_model.PieChartType.DONUT)
        .legend(
            sdk_piechart.PieChartLegendOptions()
            .display_mode(common_model.LegendDisplayMode.TABLE)
            .placement(common_model.LegendPlacement.RIGHT)
            .values([piechart_model.PieChartLegendValues.PERCENT])
        )
    )


def bargauge(
    layout: Layout,
    title: str,
    queries: Queries,
    *,
    unit: str = "short",
    description: str = "",
    width: int = 8,
    height: int = 8,
    thresholds: Steps | None = None,
) -> sdk_bargauge.Panel:
    return (
        _common(sdk_bargauge.Panel(), layout, title, description, width, height)
        .targets(_targets(queries, instant=True))
        .unit(unit)
        .thresholds(_thresholds(thresholds or [(None, "blue")]))
        .orientation(common_model.VizOrientation.HORIZONTAL)
        .display_mode(common_model.BarGaugeDisplayMode.BASIC)
        .reduce_options(_last_value())
        .show_unfilled(True)
    )


def llm_cost() -> sdk.Dashboard:
    lay = Layout()
    month = "dmobs_llm_cost_usd_total"
    today = "dmobs_llm_cost_today_usd"
    spent, cap = "dmobs_tenant_spend_month_usd", "dmobs_tenant_spend_cap_usd"
    projected = "dmobs_tenant_spend_projected_month_usd"
    panels = [
        lay.row("Spend"),
        stat(lay, "Spend today (UTC)", [(f"sum({today})", "USD")], unit="currencyUSD"),
        stat(lay, "Spend this month", [(f"sum({month})", "USD")], unit="currencyUSD"),
        stat(
            lay,
            "Tokens this month",
            [("sum(dmobs_llm_tokens_total)", "tokens")],
        ),
        stat(
            lay,
            "Tenants approaching their monthly cap",
            [
                (
                    f"count(({spent} / {cap} > 0.8) or ({projected} / {cap} > 1)) or vector(0)",
                    "tenants",
                )
            ],
            description="Over 80% of the cap spent, or on course to pass it "
            "(alert TenantApproachingSpendCap).",
            thresholds=[(None, "green"), (1, "red")],
        ),
        timeseries(
            lay,
            "Daily spend by model",
            [(f"sum by (provider, model) ({today})", "{{provider}}/{{model}}")],
            unit="currencyUSD",
            description="Spend since 00:00 UTC; starts again each day.",
            width=8,
        ),
        timeseries(
            lay,
            "Daily spend by tenant",
            [(with_slug(f"sum by (tenant) ({today})"), "{{slug}}")],
            unit="currencyUSD",
            width=8,
        ),
        timeseries(
            lay,
            "Daily spend by agent role",
            [(f"sum by (agent_role) ({today})", "{{agent_role}}")],
            unit="currencyUSD",
            width=8,
        ),
        timeseries(
            lay,
            "Monthly spend by model",
            [(f"sum by (provider, model) ({month})", "{{provider}}/{{model}}")],
            unit="currencyUSD",
            description="Month to date (UTC); starts again on the 1st.",
            width=8,
        ),
        timeseries(
            lay,
            "Monthly spend by tenant",
            [(with_slug(f"sum by (tenant) ({month})"), "{{slug}}")],
            unit="currencyUSD",
            width=8,
        ),
        timeseries(
            lay,
            "Monthly spend by agent role",
            [(f"sum by (agent_role) ({month})", "{{agent_role}}")],
            unit="currencyUSD",
            width=8,
        ),
        lay.row("Tokens and providers"),
        timeseries(
            lay,
            "Input vs output tokens per model (this month)",
            [("sum by (model, direction) (dmobs_llm_tokens_total)", "{{model}} {{direction}}")],
            width=12,
        ),
        piechart(
            lay,
            "Calls per provider (this month)",
            [
                (
                    "sum by (provider) (dmobs_llm_calls_total)"
                    " / scalar(sum(dmobs_llm_calls_total))",
                    "{{provider}}",
                )
            ],
            unit="percentunit",
            description="anthropic = Claude, openai = OpenAI, ollama = self-hosted models.",
            width=12,
        ),
        timeseries(
            lay,
            "Spend rate by model (exemplars open the trace)",
            [
                (
                    f"sum by (model) (rate({month}[$__rate_interval])) * 3600",
                    "{{model}}",
                )
            ],
            unit="currencyUSD",
            description="USD per hour. Each point's exemplar is the trace id of that series' "
            "most expensive call today: click it to open the agent run in Tempo.",
            width=12,
            exemplars=True,
        ),
        table(
            lay,
            "Tenants: month to date, projected and cap",
            [
                (with_slug(f"max by (tenant) ({spent})"), ""),
                (with_slug(f"max by (tenant) ({projected})"), ""),
                (with_slug(f"max by (tenant) ({cap})"), ""),
            ],
            unit="currencyUSD",
            width=12,
        ),
    ]
    return dashboard(
        "dm-llm-cost",
        "LLM Cost",
        "What the platform's agents spend on language models (from llm_calls), "
        "by model, tenant and agent role, against the tenants' monthly caps.",
        panels,
        tags=["platform", "llm"],
    )


def activity_pipeline() -> sdk.Dashboard:
    lay = Layout()
    runs = "dmobs_activity_runs_24h"
    dur_sum = "dmobs_activity_pipeline_duration_seconds_sum"
    dur_count = "dmobs_activity_pipeline_duration_seconds_count"
    panels = [
        lay.row("Activities"),
        bargauge(
            lay,
            "Activities by status (last 24 h)",
            [("sum by (status) (dmobs_activities)", "{{status}}")],
            description="Activities touched in the last 24 h, by their latest status.",
            width=12,
        ),
        stat(
            lay,
            "Awaiting approval (all tenants)",
            [("sum(dmobs_activities_awaiting_approval)", "")],
            thresholds=[(None, "green"), (25, "orange"), (100, "red")],
        ),
        stat(
            lay,
            "Longest wait for approval",
            [("max(dmobs_activity_oldest_awaiting_approval_seconds)", "")],
            unit="s",
            thresholds=[(None, "green"), (24 * 3600, "orange"), (OVERDUE_SECONDS, "red")],
        ),
        stat(
            lay,
            "Average pipeline duration (7 days)",
            [(f"sum({dur_sum}) / sum({dur_count})", "")],
            unit="s",
            description="Period start to deliverable completion, deliverables of the last 7 days.",
            width=12,
        ),
        lay.row("Human in the loop"),
        bargauge(
            lay,
            "HITL backlog: awaiting approval, by tenant",
            [(with_slug("sum by (tenant) (dmobs_activities_awaiting_approval)"), "{{slug}}")],
            width=12,
        ),
        timeseries(
            lay,
            "Oldest wait for approval by tenant",
            [
                (
                    with_slug("max by (tenant) (dmobs_activity_oldest_awaiting_approval_seconds)"),
                    "{{slug}}",
                )
            ],
            unit="s",
            description="Over 48 h (the auto-activation window) is overdue: alert PipelineOverdue.",
            width=12,
        ),
        lay.row("Duration and failures"),
        timeseries(
            lay,
            "Average pipeline duration by tenant (period start to deliverable)",
            [
                (
                    with_slug(f"sum by (tenant) ({dur_sum}) / sum by (tenant) ({dur_count})"),
                    "{{slug}}",
                )
            ],
            unit="s",
            width=8,
        ),
        bargauge(
            lay,
            "Failure rate by agent role (24 h)",
            [
                (
                    f'sum by (agent_role) ({runs}{{outcome="failed"}})'
                    f" / sum by (agent_role) ({runs})",
                    "{{agent_role}}",
                )
            ],
            unit="percentunit",
            thresholds=[(None, "green"), (0.05, "orange"), (0.15, "red")],
        ),
        bargauge(
            lay,
            "Failure rate by deliverable type (24 h)",
            [
                (
                    f'sum by (deliverable_type) ({runs}{{outcome="failed"}})'
                    f" / sum by (deliverable_type) ({runs})",
                    "{{deliverable_type}}",
                )
            ],
            unit="percentunit",
            thresholds=[(None, "green"), (0.05, "orange"), (0.15, "red")],
        ),
        table(
            lay,
            "Agent runs by role and deliverable type (24 h)",
            [(f"sum by (agent_role, deliverable_type, outcome) ({runs})", "")],
            width=24,
        ),
    ]
    return dashboard(
        "dm-activity-pipeline",
        "Activity Pipeline",
        "Activities from creation through the agents' runs and human approval to delivery, "
        "derived from the audit log.",
        panels,
        tags=["platform", "activities"],
    )


def tenant_health() -> sdk.Dashboard:
    lay = Layout()
    spent, cap = "dmobs_tenant_spend_month_usd", "dmobs_tenant_spend_cap_usd"
    projected = "dmobs_tenant_spend_projected_month_usd"
    oldest = "dmobs_activity_oldest_awaiting_approval_seconds"
    panels = [
        lay.row("Tenants"),
        stat(lay, "Active tenants (30 days)", [("sum(dmobs_tenants_active)", "")]),
        stat(
            lay,
            "Approaching spend cap",
            [(f"count(({spent} / {cap} > 0.8) or ({projected} / {cap} > 1)) or vector(0)", "")],
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            lay,
            "Pipeline overdue",
            [(f"count({oldest} > {OVERDUE_SECONDS}) or vector(0)", "")],
            description="Tenants with an activity awaiting approval for more than 48 h.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            lay,
            "Recurring tasks not configured",
            [("count(dmobs_tenant_scheduled_agents == 0) or vector(0)", "")],
            description="Tenants none of whose agents runs on a schedule.",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        piechart(
            lay,
            "Active tenants by plan",
            [("sum by (plan) (dmobs_tenants_active)", "{{plan}}")],
            width=8,
        ),
        bargauge(
            lay,
            "Activities per day per tenant (top 10)",
            [(with_slug("topk(10, dmobs_activities_started_24h)"), "{{slug}}")],
            description="Activities created or started in the last 24 h.",
            width=16,
        ),
        lay.row("Tenants at risk"),
        table(
            lay,
            "Tenants at risk: spend vs cap, overdue pipeline, recurring tasks",
            [
                (with_slug(f"max by (tenant) ({spent} / {cap})"), ""),
                (with_slug(f"max by (tenant) ({projected} / {cap})"), ""),
                (with_slug(f"max by (tenant) ({oldest})"), ""),
                (with_slug("max by (tenant) (dmobs_tenant_scheduled_agents)"), ""),
            ],
            description="A: month-to-date spend / cap; B: projected / cap; C: longest wait "
            "for approval (s); D: agents on a schedule (0 = no recurring tasks).",
            width=24,
            height=8,
        ),
        timeseries(
            lay,
            "Spend vs monthly cap by tenant",
            [
                (with_slug(f"max by (tenant) ({spent} / {cap})"), "{{slug}} spent"),
                (with_slug(f"max by (tenant) ({projected} / {cap})"), "{{slug}} projected"),
            ],
            unit="percentunit",
        ),
        timeseries(
            lay,
            "Scheduled agents by tenant",
            [(with_slug("max by (tenant) (dmobs_tenant_scheduled_agents)"), "{{slug}}")],
        ),
    ]
    return dashboard(
        "dm-tenant-health",
        "Tenant Health",
        "For Manage: which tenants are active, busy, and at risk (spend cap, overdue "
        "pipeline, no recurring tasks).",
        panels,
        tags=["platform", "tenants"],
    )


DASHBOARDS = {
    "system-health.json": system_health,
    "audit-activity.json": audit_activity,
    "llm-cost.json": llm_cost,
    "activity-pipeline.json": activity_pipeline,
    "tenant-health.json": tenant_health,
}


def to_json(board: sdk.Dashboard) -> str:
    """The dashboard as the SDK encodes it, indented for readable diffs."""
    encoded = JSONEncoder(sort_keys=True).encode(board.build())
    return json.dumps(json.loads(encoded), indent=2) + "\n"


def render_all() -> dict[str, str]:
    return {name: to_json(build()) for name, build in DASHBOARDS.items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
