"""The four seed dashboards on a real Prometheus: after ``seed_demo`` and BullMQ jobs
made by the real bullmq package, every Prometheus target of System Health, LLM
Cost, Activity Pipeline and Tenant Health returns data.

Prometheus (Debian's package) scrapes the app under test twice, like
ops/prometheus/prometheus.yml: ``/metrics`` (job ``dmobs``) and the collectors'
``/metrics/platform`` (job ``dmobs-platform``, OpenMetrics, exemplars stored),
and the real blackbox exporter probes /readyz for the uptime panels (jobs
``uptime`` and ``uptime-api``, tests/ops/blackbox.py). The expressions are
extracted from the dashboard JSON files, so a panel added later is checked too.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from pytest_django.live_server_helper import LiveServer

from dmobs.collectors.platform import reset_platform_registry
from dmobs.models import LlmCall, Tenant
from tests.bullmq_helpers import REDIS_URL, bullmq_prefix, make_jobs
from tests.obs_helpers import free_port
from tests.ops.blackbox import ApiStandIn, BlackboxExporter, needs_blackbox, uptime_jobs
from tests.ops.test_prometheus import (
    PrometheusServer,
    dashboard_queries,
    grafana_to_promql,
    needs_prometheus,
)

__all__ = ["bullmq_prefix"]  # the fixture

SEED_DASHBOARDS = ("System Health", "LLM Cost", "Activity Pipeline", "Tenant Health")


class TwoJobPrometheus(PrometheusServer):
    """Scrapes /metrics and /metrics/platform of one target, with exemplar storage
    (and ``probes``: the uptime jobs through the blackbox exporter)."""

    def __init__(self, *, target: str, workdir: Path, probes: list[dict] = ()):
        static = [{"targets": [target], "labels": {"service": "dmobs"}}]
        scrape_configs = [
            {"job_name": "dmobs", "static_configs": static},
            {
                "job_name": "dmobs-platform",
                "metrics_path": "/metrics/platform",
                "static_configs": static,
            },
            *probes,
        ]
        super().__init__(
            scrape_configs=scrape_configs, workdir=workdir, features=("exemplar-storage",)
        )


@pytest.fixture
def demo(transactional_db, settings, bullmq_prefix):
    call_command("seed_demo", stdout=StringIO())
    jobs = make_jobs(bullmq_prefix)
    settings.REDIS_URL = REDIS_URL
    settings.DMOBS_BULLMQ_PREFIX = bullmq_prefix
    settings.DMOBS_BULLMQ_QUEUES = []
    settings.DMOBS_COLLECTOR_CACHE_SECONDS = 0
    reset_platform_registry()
    yield jobs
    reset_platform_registry()


@pytest.fixture
def served(demo, tmp_path):
    server = LiveServer(f"127.0.0.1:{free_port()}", start=False)
    server._live_server_modified_settings.enable()
    server.start()
    # Uptime per service: the three apps are this server; a stand-in is the API.
    api = ApiStandIn()
    blackbox = BlackboxExporter(tmp_path)
    prometheus = None
    try:
        blackbox.wait_ready()
        readyz = f"{server.url}/readyz"
        probes = uptime_jobs(
            blackbox.address,
            {"Dashboard": readyz, "DM Portal": readyz, "Manage": readyz},
            api.url,
            tmp_path,
        )
        prometheus = TwoJobPrometheus(
            target=server.url.removeprefix("http://"), workdir=tmp_path, probes=probes
        )
        prometheus.wait_ready()
        yield server, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        blackbox.stop()
        api.stop()
        server.stop()
        server._live_server_modified_settings.disable()


def _traffic(base: str) -> None:
    for path in ("/healthz", "/accounts/login/", "/no-such-page/"):
        try:
            urllib.request.urlopen(base + path, timeout=10).read()
        except urllib.error.HTTPError:
            pass


def _wait_for(prometheus, base: str, scrapes: int = 4) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _traffic(base)
        app = 'up{job=~"dmobs|dmobs-platform"}'
        result = prometheus.query(f"min(count_over_time({app}[5m])) and min({app}) == 1")
        jobs = prometheus.query(f"count({app} == 1)")["data"]["result"]
        probes = prometheus.query("count(probe_success == 1)")["data"]["result"]
        samples = result.get("data", {}).get("result", [])
        if samples and jobs and jobs[0]["value"][1] == "2" and probes:
            counted = prometheus.query(f"min(count_over_time({app}[5m]))")["data"]["result"]
            if float(counted[0]["value"][1]) >= scrapes and probes[0]["value"][1] == "4":
                return
        time.sleep(0.5)
    raise AssertionError(f"prometheus did not scrape both jobs: {prometheus.api('targets')}")


@needs_prometheus
@needs_blackbox
def test_every_target_of_the_seed_dashboards_has_data(served, demo):
    server, prometheus = served
    _wait_for(prometheus, server.url)

    queries = [q for q in dashboard_queries() if q[0] in SEED_DASHBOARDS]
    assert {title for title, _, _ in queries} == set(SEED_DASHBOARDS)
    assert len(queries) >= 60
    empty, errors = [], []
    for dashboard, panel, expr in queries:
        promql = grafana_to_promql(expr)
        result = prometheus.query(promql)
        if result.get("status") != "success":
            errors.append(f"{dashboard} / {panel}: {result.get('error')} in {promql}")
        elif not result["data"]["result"]:
            empty.append(f"{dashboard} / {panel}: {promql}")
    assert not errors, "\n".join(errors)
    assert not empty, "targets without data:\n" + "\n".join(empty)


@needs_prometheus
@needs_blackbox
def test_the_data_is_the_demos_and_the_queues(served, demo):
    server, prometheus = served
    _wait_for(prometheus, server.url)

    def value(expr: str) -> float:
        (sample,) = prometheus.query(expr)["data"]["result"]
        return float(sample["value"][1])

    assert value("sum(dmobs_bullmq_dead_letter_jobs)") == sum(q["failed"] for q in demo.values())
    assert (
        value('sum(dmobs_bullmq_jobs{queue="writer", state="waiting"})')
        == (demo["writer"]["waiting"])
    )
    # Initech's own cap is small: it is on course to pass it; Globex waits too long.
    initech = Tenant.objects.get(slug="initech").ref_id
    globex = Tenant.objects.get(slug="globex").ref_id
    over = prometheus.query(
        "dmobs_tenant_spend_projected_month_usd / dmobs_tenant_spend_cap_usd > 1"
    )["data"]["result"]
    assert {s["metric"]["tenant"] for s in over} == {initech}
    late = prometheus.query("dmobs_activity_oldest_awaiting_approval_seconds > 48 * 3600")
    assert {s["metric"]["tenant"] for s in late["data"]["result"]} == {globex}

    # The dead-letter alert fires on the real queues (it has no `for`).
    deadline = time.monotonic() + 20
    while True:
        firing = prometheus.query('ALERTS{alertname="DeadLetterQueueNotEmpty"}')["data"]["result"]
        queues = {s["metric"]["queue"] for s in firing if s["metric"]["alertstate"] == "firing"}
        if queues:
            break
        assert time.monotonic() < deadline, firing
        time.sleep(0.5)
    assert queues == {name for name, counts in demo.items() if counts["failed"]}

    # Exemplars: a cost series links to the trace of a real call of the demo.
    now = time.time()
    result = prometheus.api(
        "query_exemplars", query="dmobs_llm_cost_usd_total", start=str(now - 600), end=str(now)
    )
    assert result["status"] == "success", result
    traces = {e["labels"]["trace_id"] for series in result["data"] for e in series["exemplars"]}
    assert traces
    assert LlmCall.objects.filter(trace_id__in=traces).count() >= len(traces) > 0
