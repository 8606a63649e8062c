"""Every PromQL expression of the dashboards and alert rules, evaluated by a real
Prometheus that scrapes the app under test; plus promtool's checks of the
config and the alert rules' unit tests.

Prometheus is Debian's ``prometheus`` package (``.ci/run`` installs it). Without
the binary these tests skip, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer
from ruamel.yaml import YAML

from dmobs.audit import audit_log
from tests.obs_helpers import free_port
from tests.ops.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
DASHBOARD_DIR = OPS / "grafana" / "dashboards"
ALERTS = OPS / "prometheus" / "alerts.yml"

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (apt-get install prometheus; .ci/run does)",
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (it comes with Debian's prometheus package)",
)

# What Grafana substitutes before sending a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$job": ".+"}


def grafana_to_promql(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) for every Prometheus target."""
    queries = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for t in panel.get("targets", []):
                if t["datasource"]["uid"] == "prometheus":
                    queries.append((dashboard["title"], panel["title"], t["expr"]))
    return queries


def alert_queries() -> list[tuple[str, str]]:
    rules = YAML(typ="safe").load(ALERTS.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def test_there_are_queries_to_check():
    titles = {title for title, _, _ in dashboard_queries()}
    assert len(titles) == 5
    assert len(dashboard_queries()) > 40
    assert {"AuditSpoolNotEmpty", "ServiceDown", "HighServerErrorRate", "ServiceNotReady"} <= {
        name for name, _ in alert_queries()
    }


class PrometheusServer(ServerProcess):
    name = "prometheus"

    def __init__(
        self,
        *,
        workdir: Path,
        target: str = "",
        scrape_configs: list[dict] | None = None,
        features: tuple[str, ...] = (),
    ):
        """Scrapes the app at ``target`` every 500 ms, or the given ``scrape_configs``,
        with the committed alert rules."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if scrape_configs is None:
            static = [{"targets": [target], "labels": {"service": "dmobs"}}]
            scrape_configs = [
                {"job_name": "dmobs", "scrape_interval": "500ms", "static_configs": static}
            ]
        config = {
            "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": scrape_configs,
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        argv = [
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            *(f"--enable-feature={feature}" for feature in features),
        ]
        super().__init__(argv, workdir=workdir, health_url=f"{self.url}/-/ready")

    def api(self, path: str, **params: str) -> dict:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400/422 carry the error as JSON
            return json.loads(exc.read())

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)


@pytest.fixture
def app_server(transactional_db):
    server = LiveServer(f"127.0.0.1:{free_port()}", start=False)
    server._live_server_modified_settings.enable()
    server.start()
    yield server
    server.stop()
    server._live_server_modified_settings.disable()


@pytest.fixture
def prometheus(app_server):
    with tempfile.TemporaryDirectory(prefix="dmobs-prometheus-") as workdir:
        target = app_server.url.removeprefix("http://")
        server = PrometheusServer(target=target, workdir=Path(workdir))
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()


def _traffic(base: str) -> None:
    for path in ("/healthz", "/healthz", "/accounts/login/", "/no-such-page/"):
        try:
            urllib.request.urlopen(base + path, timeout=10).read()
        except urllib.error.HTTPError:
            pass  # the 404 is part of the traffic
    audit_log(
        tenant_id="t-acme",
        actor_type="agent",
        actor_id="agent-1",
        actor_name="Planner",
        action="created",
        resource_type="activity",
        resource_id="act-1",
        description="The planner created an activity",
    )


def _wait_for_scrapes(prometheus: PrometheusServer, base: str, count: int = 4) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        _traffic(base)
        result = prometheus.query('count_over_time(up{job="dmobs"}[5m])')
        samples = result.get("data", {}).get("result", [])
        if samples and float(samples[0]["value"][1]) >= count:
            up = prometheus.query('up{job="dmobs"}')["data"]["result"]
            assert up and up[0]["value"][1] == "1", up
            return
        time.sleep(0.5)
    targets = prometheus.api("targets")
    raise AssertionError(f"prometheus did not scrape the app: {json.dumps(targets)[:2000]}")


@needs_prometheus
def test_every_query_and_alert_runs_on_real_prometheus_scraping_the_app(app_server, prometheus):
    _wait_for_scrapes(prometheus, app_server.url)

    errors = []
    empty_health = []
    for dashboard, panel, expr in dashboard_queries():
        promql = grafana_to_promql(expr)
        result = prometheus.query(promql)
        if result.get("status") != "success":
            errors.append(f"{dashboard} / {panel}: {result.get('error')} in {promql}")
            continue
        if result.get("warnings"):
            errors.append(f"{dashboard} / {panel}: warnings {result['warnings']} in {promql}")
        # The queue panels read the collectors' job (/metrics/platform, with Redis):
        # test_platform_dashboards.py checks them, with data.
        # The uptime panels read the blackbox exporter's probes: test_uptime.py and
        # test_platform_dashboards.py run it.
        platform = "dmobs_bullmq_" in promql or "probe_success" in promql
        if dashboard == "System Health" and not platform and not result["data"]["result"]:
            empty_health.append(f"{panel}: {promql}")
    for name, expr in alert_queries():
        result = prometheus.query(expr)
        if result.get("status") != "success":
            errors.append(f"alert {name}: {result.get('error')}")

    assert not errors, "\n".join(errors)
    assert not empty_health, "System Health queries without data:\n" + "\n".join(empty_health)

    # The latency quantiles name real routes.
    p95 = prometheus.query(
        grafana_to_promql(
            "histogram_quantile(0.95, sum by (le, route) "
            "(rate(dmobs_http_request_duration_seconds_bucket[5m])))"
        )
    )["data"]["result"]
    assert "healthz" in {sample["metric"].get("route") for sample in p95}

    # Audit activity reaches Prometheus with its labels.
    activity = prometheus.query('dmobs_audit_activity_total{actor_type="agent", action="created"}')[
        "data"
    ]["result"]
    assert activity and activity[0]["metric"]["resource_type"] == "activity"

    # The alert rules loaded, evaluate without errors, and a healthy app with
    # an empty spool fires nothing.
    deadline = time.monotonic() + 20
    while True:
        groups = prometheus.api("rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and not any(r.get("lastEvaluation", "0001").startswith("0001") for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    assert {rule["name"] for rule in rules} == {name for name, _ in alert_queries()}
    bad = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert not bad, bad
    assert [rule["name"] for rule in rules if rule.get("state") == "firing"] == []


@needs_promtool
def test_promtool_checks_the_compose_prometheus_config(tmp_path):
    """The config docker-compose mounts, with its container paths pointed at the repo."""
    config = YAML(typ="safe").load((OPS / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(ALERTS)]
    token = tmp_path / "token"
    token.write_text("t\n")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
            job["authorization"]["credentials_file"] = str(token)
        for sd in job.get("file_sd_configs", []):
            # Mounted by compose from ops/prometheus/targets.
            sd["files"] = [
                f.replace("/etc/prometheus/targets/", f"{OPS}/prometheus/targets/")
                for f in sd["files"]
            ]
            assert all(Path(f).is_file() for f in sd["files"]), sd
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_pass_their_promtool_unit_tests():
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yml"],
        cwd=OPS / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS", result.stdout + result.stderr)
