"""Writes the Grafana dashboards of dmobs as JSON into ops/grafana/dashboards/.

The dashboards are code: edit this file and run ``make dashboards`` (the test
suite fails when the committed JSON differs from what this file writes). Every
Prometheus expression here is evaluated against a real Prometheus in
tests/ops/test_prometheus.py; the metric names are the contract in
docs/METRICS.md.

Grafana variables used in expressions: ``$job`` (a dashboard variable) and
``$__rate_interval``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
TEMPO = {"type": "tempo", "uid": "tempo"}

JOB = 'job=~"$job"'


class Layout:
    """Places panels left to right in rows of 24 grid units."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, width: int, height: int) -> dict:
        if self.x + width > 24:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        pos = {"x": self.x, "y": self.y, "w": width, "h": height}
        self.x += width
        self.row_height = max(self.row_height, height)
        return pos

    def row(self, title: str) -> dict:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0
        panel = {
            "type": "row",
            "title": title,
            "id": self.take_id(),
            "collapsed": False,
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
            "panels": [],
        }
        self.y += 1
        return panel

    def take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> dict:
    return {
        "datasource": PROM,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }


def _targets(queries: list[tuple[str, str]], instant: bool = False) -> list[dict]:
    return [
        target(expr, legend, chr(ord("A") + i), instant=instant)
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(
    layout: Layout,
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    stack: bool = False,
) -> dict:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "id": layout.take_id(),
        "gridPos": layout.place(width, height),
        "datasource": PROM,
        "targets": _targets(queries),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 15 if stack else 0,
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                    "showPoints": "never",
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    layout: Layout,
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[dict] | None = None,
) -> dict:
    steps = [{"value": value, "color": color} for value, color in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "id": layout.take_id(),
        "gridPos": layout.place(width, height),
        "datasource": PROM,
        "targets": _targets(queries, instant=True),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "mappings": mappings or [],
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "auto",
        },
    }


def table(
    layout: Layout,
    title: str,
    queries: list[tuple[str, str]],
    *,
    description: str = "",
    width: int = 12,
    height: int = 8,
    unit: str = "short",
) -> dict:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "id": layout.take_id(),
        "gridPos": layout.place(width, height),
        "datasource": PROM,
        "targets": [{**t, "format": "table"} for t in _targets(queries, instant=True)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "transformations": [{"id": "merge", "options": {}}],
        "options": {"showHeader": True},
    }


def logs(layout: Layout, title: str, expr: str, *, width: int = 24, height: int = 10) -> dict:
    return {
        "type": "logs",
        "title": title,
        "id": layout.take_id(),
        "gridPos": layout.place(width, height),
        "datasource": LOKI,
        "targets": [{"datasource": LOKI, "refId": "A", "expr": expr, "queryType": "range"}],
        "options": {
            "showTime": True,
            "wrapLogMessage": True,
            "enableLogDetails": True,
            "sortOrder": "Descending",
        },
    }


def job_variable() -> dict:
    return {
        "name": "job",
        "label": "Service",
        "type": "query",
        "datasource": PROM,
        "query": {"query": "label_values(up, job)", "refId": "job"},
        "definition": "label_values(up, job)",
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict],
    *,
    tags: list[str],
    variables: list[dict] | None = None,
) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["dmobs", *tags],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables or []},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["dmobs"],
                "asDropdown": True,
                "title": "dmobs dashboards",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


# --- System Health -------------------------------------------------------------------


def with_exemplars(panel: dict) -> dict:
    """Show the histogram's exemplars (trace ids) on the panel: a click on a
    latency spike opens the trace that caused it (Prometheus data source ->
    Tempo, see provisioning/datasources)."""
    for t in panel["targets"]:
        t["exemplar"] = True
    return panel


def system_health() -> dict:
    lay = Layout()
    ok_down = [{"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}]
    # Counted by the outermost middleware: a 500 made by any layer is here.
    responses = "dmobs_http_responses_total"
    latency = "dmobs_http_request_duration_seconds_bucket"
    # Probes and scrapes (answered every few seconds) are left out of the 5xx share.
    served = 'route!~"healthz|readyz|metrics"'
    panels = [
        lay.row("Service"),
        stat(
            lay,
            "Up",
            [(f"min by (job) (up{{{JOB}}})", "{{job}}")],
            description="1 when Prometheus could scrape every target of the service.",
            thresholds=[(None, "red"), (1, "green")],
            mappings=ok_down,
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
        with_exemplars(
            timeseries(
                lay,
                "Latency p50 per route",
                [
                    (
                        f"histogram_quantile(0.50, sum by (le, route) "
                        f"(rate({latency}{{{JOB}}}[5m])))",
                        "{{route}}",
                    )
                ],
                unit="s",
                width=8,
            )
        ),
        with_exemplars(
            timeseries(
                lay,
                "Latency p95 per route",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le, route) "
                        f"(rate({latency}{{{JOB}}}[5m])))",
                        "{{route}}",
                    )
                ],
                unit="s",
                width=8,
            )
        ),
        with_exemplars(
            timeseries(
                lay,
                "Latency p99 per route",
                [
                    (
                        f"histogram_quantile(0.99, sum by (le, route) "
                        f"(rate({latency}{{{JOB}}}[5m])))",
                        "{{route}}",
                    )
                ],
                unit="s",
                width=8,
            )
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


def audit_activity() -> dict:
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


# --- The platform's dashboards (metrics the platform's services export) --------------


def llm_cost() -> dict:
    lay = Layout()
    cost = "dm_llm_cost_usd_total"
    panels = [
        lay.row("Spend"),
        stat(
            lay, "Spend today (24h)", [(f"sum(increase({cost}[24h]))", "USD")], unit="currencyUSD"
        ),
        stat(
            lay,
            "Spend rate (per hour)",
            [(f"sum(rate({cost}[1h])) * 3600", "USD/h")],
            unit="currencyUSD",
        ),
        stat(
            lay,
            "Tokens (24h)",
            [("sum(increase(dm_llm_tokens_total[24h]))", "tokens")],
        ),
        stat(
            lay,
            "Error share (1h)",
            [
                (
                    'sum(rate(dm_llm_requests_total{status!="ok"}[1h]))'
                    " / sum(rate(dm_llm_requests_total[1h]))",
                    "errors",
                )
            ],
            unit="percentunit",
            thresholds=[(None, "green"), (0.02, "orange"), (0.1, "red")],
        ),
        timeseries(
            lay,
            "Spend per hour by model",
            [(f"sum by (provider, model) (increase({cost}[1h]))", "{{provider}}/{{model}}")],
            unit="currencyUSD",
            stack=True,
        ),
        timeseries(
            lay,
            "Spend per hour by service",
            [(f"sum by (service) (increase({cost}[1h]))", "{{service}}")],
            unit="currencyUSD",
            stack=True,
        ),
        timeseries(
            lay,
            "Top 10 tenants by spend (24h)",
            [
                (
                    "topk(10, sum by (tenant) (increase(dm_llm_cost_by_tenant_usd_total[24h])))",
                    "{{tenant}}",
                )
            ],
            unit="currencyUSD",
        ),
        timeseries(
            lay,
            "Tokens per minute by direction",
            [
                (
                    "sum by (direction) (rate(dm_llm_tokens_total[$__rate_interval])) * 60",
                    "{{direction}}",
                )
            ],
            stack=True,
        ),
        lay.row("Requests"),
        timeseries(
            lay,
            "Requests per second by status",
            [("sum by (status) (rate(dm_llm_requests_total[$__rate_interval]))", "{{status}}")],
            unit="reqps",
            stack=True,
        ),
        timeseries(
            lay,
            "Latency p95 by model",
            [
                (
                    "histogram_quantile(0.95, sum by (le, model) "
                    "(rate(dm_llm_request_duration_seconds_bucket[5m])))",
                    "{{model}}",
                )
            ],
            unit="s",
        ),
        timeseries(
            lay,
            "Cost per 1k output tokens by model",
            [
                (
                    f"sum by (model) (rate({cost}[1h])) / "
                    '(sum by (model) (rate(dm_llm_tokens_total{direction="output"}[1h])) / 1000)',
                    "{{model}}",
                )
            ],
            unit="currencyUSD",
        ),
    ]
    return dashboard(
        "dm-llm-cost",
        "LLM Cost",
        "What the platform's agents spend on language models, by model, service and tenant.",
        panels,
        tags=["platform", "llm"],
    )


def activity_pipeline() -> dict:
    lay = Layout()
    events = "dm_activity_pipeline_events_total"
    panels = [
        lay.row("Flow"),
        stat(
            lay,
            "Activities completed (24h)",
            [(f'sum(increase({events}{{stage="deliver", outcome="ok"}}[24h]))', "")],
        ),
        stat(
            lay,
            "Waiting for review",
            [('sum(dm_activity_pipeline_queue_depth{stage="review"})', "")],
            thresholds=[(None, "green"), (50, "orange"), (200, "red")],
        ),
        stat(
            lay,
            "Auto-activated share (24h)",
            [
                (
                    f'sum(increase({events}{{stage="approve", outcome="auto_activated"}}[24h]))'
                    f' / sum(increase({events}{{stage="approve"}}[24h]))',
                    "",
                )
            ],
            unit="percentunit",
        ),
        stat(
            lay,
            "Failures (1h)",
            [(f'sum(increase({events}{{outcome="failed"}}[1h]))', "")],
            thresholds=[(None, "green"), (1, "orange"), (10, "red")],
        ),
        timeseries(
            lay,
            "Events per minute by stage and outcome",
            [
                (
                    f"sum by (stage, outcome) (rate({events}[$__rate_interval])) * 60",
                    "{{stage}} {{outcome}}",
                )
            ],
            width=24,
        ),
        lay.row("Backlog"),
        timeseries(
            lay,
            "Queue depth by stage",
            [("sum by (stage) (dm_activity_pipeline_queue_depth)", "{{stage}}")],
            stack=True,
        ),
        timeseries(
            lay,
            "Oldest waiting item by stage",
            [("max by (stage) (dm_activity_pipeline_oldest_pending_seconds)", "{{stage}}")],
            unit="s",
        ),
        timeseries(
            lay,
            "Stage duration p50 / p95",
            [
                (
                    "histogram_quantile(0.5, sum by (le, stage) "
                    "(rate(dm_activity_pipeline_stage_duration_seconds_bucket[5m])))",
                    "p50 {{stage}}",
                ),
                (
                    "histogram_quantile(0.95, sum by (le, stage) "
                    "(rate(dm_activity_pipeline_stage_duration_seconds_bucket[5m])))",
                    "p95 {{stage}}",
                ),
            ],
            unit="s",
        ),
        timeseries(
            lay,
            "Rejection share at review (1h)",
            [
                (
                    f'sum(rate({events}{{stage="review", outcome="rejected"}}[1h]))'
                    f' / sum(rate({events}{{stage="review"}}[1h]))',
                    "rejected",
                )
            ],
            unit="percentunit",
        ),
    ]
    return dashboard(
        "dm-activity-pipeline",
        "Activity Pipeline",
        "Activities from generation through review and approval to delivery.",
        panels,
        tags=["platform", "activities"],
    )


def tenant_health() -> dict:
    lay = Layout()
    req = "dm_tenant_requests_total"
    panels = [
        lay.row("Tenants"),
        stat(lay, "Tenants", [("count(dm_tenant_info)", "")]),
        stat(
            lay,
            "Active users (24h)",
            [("sum(dm_tenant_active_users)", "")],
        ),
        stat(
            lay,
            "Tenants with 5xx (1h)",
            [(f'count(sum by (tenant) (increase({req}{{status_class="5xx"}}[1h])) > 0)', "")],
            thresholds=[(None, "green"), (1, "orange")],
        ),
        stat(
            lay,
            "Tenants over 90% of a quota",
            [("count(max by (tenant) (dm_tenant_quota_usage_ratio) > 0.9)", "")],
            thresholds=[(None, "green"), (1, "orange")],
        ),
        table(
            lay,
            "Tenants: plan, users, error share, worst quota",
            [
                ("max by (tenant, slug, plan) (dm_tenant_info)", ""),
                (
                    "max by (tenant) (dm_tenant_active_users)",
                    "",
                ),
                (
                    f'sum by (tenant) (rate({req}{{status_class="5xx"}}[1h]))'
                    f" / sum by (tenant) (rate({req}[1h]))",
                    "",
                ),
                ("max by (tenant) (dm_tenant_quota_usage_ratio)", ""),
            ],
            width=24,
            height=10,
        ),
        timeseries(
            lay,
            "Requests per second by tenant (top 10)",
            [(f"topk(10, sum by (tenant) (rate({req}[$__rate_interval])))", "{{tenant}}")],
            unit="reqps",
        ),
        timeseries(
            lay,
            "Error share by tenant (top 10, 5m)",
            [
                (
                    f'topk(10, sum by (tenant) (rate({req}{{status_class="5xx"}}[5m]))'
                    f" / sum by (tenant) (rate({req}[5m])))",
                    "{{tenant}}",
                )
            ],
            unit="percentunit",
        ),
        timeseries(
            lay,
            "Agent runs per hour by outcome",
            [
                (
                    "sum by (outcome) (increase(dm_tenant_agent_runs_total[1h]))",
                    "{{outcome}}",
                )
            ],
            stack=True,
        ),
        timeseries(
            lay,
            "Quota usage (top 10)",
            [
                (
                    "topk(10, max by (tenant, resource) (dm_tenant_quota_usage_ratio))",
                    "{{tenant}} {{resource}}",
                )
            ],
            unit="percentunit",
        ),
    ]
    return dashboard(
        "dm-tenant-health",
        "Tenant Health",
        "Per-tenant usage, errors and quotas across the platform's services.",
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


def render_all() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
