"""Uptime per service (System Health, Uptime): the real blackbox exporter with the
committed ops/prometheus/blackbox.yml, driven by a real Prometheus with the
committed probe jobs, probes the app's /readyz under gunicorn (Dashboard and DM
Portal on one server, Manage on a second one) and a tiny HTTP server standing
for the platform API. Every service is green (1); Manage's server and the API
taken down turn red (0) on the dashboard's own panel queries while the others
stay green, and the ServiceUnreachable alert's expression names exactly those
two."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.live_helpers import Gunicorn, child_env, get
from tests.ops.blackbox import (
    BLACKBOX,
    BLACKBOX_CONFIG,
    ApiStandIn,
    BlackboxExporter,
    needs_blackbox,
    uptime_jobs,
)
from tests.ops.test_prometheus import (
    ALERTS,
    DASHBOARD_DIR,
    PrometheusServer,
    needs_prometheus,
)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"API", "Dashboard", "DM Portal", "Manage"}


class ProbingPrometheus(PrometheusServer):
    """A real Prometheus with the given scrape jobs and the committed alert rules."""

    def __init__(self, *, scrape_configs: list[dict], workdir: Path):
        super().__init__(scrape_configs=scrape_configs, workdir=workdir)


def uptime_panels() -> dict[str, str]:
    """{panel title: expression} of System Health's Uptime row."""
    board = json.loads((DASHBOARD_DIR / "system-health.json").read_text())
    panels, in_row = {}, False
    for panel in board["panels"]:
        if panel["type"] == "row":
            in_row = panel["title"] == "Uptime"
            continue
        if in_row:
            assert panel["type"] == "stat"
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert [(s["value"], s["color"]) for s in steps] == [(None, "red"), (1, "green")]
            (target,) = panel["targets"]
            panels[panel["title"]] = target["expr"]
    return panels


def _alert_expr(name: str) -> str:
    rules = YAML(typ="safe").load(ALERTS.read_text())
    (expr,) = [r["expr"] for g in rules["groups"] for r in g["rules"] if r["alert"] == name]
    return expr


def _gunicorn(workdir: Path) -> Gunicorn:
    workdir.mkdir()
    (workdir / "prom").mkdir()
    env = child_env(
        DJANGO_SETTINGS_MODULE="tests.settings_live",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        AUDIT_WRITER_MODE="thread",
        AUDIT_SPOOL_DIR=str(workdir / "spool"),
        LOG_FILE=str(workdir / "app.log"),
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "prom"),
        ALLOWED_HOSTS="127.0.0.1",
    )
    return Gunicorn(env, workers=1, threads=2)


@pytest.fixture
def stack(tmp_path):
    started = []
    try:
        apps = _gunicorn(tmp_path / "apps")
        started.append(apps)
        manage = _gunicorn(tmp_path / "manage")
        started.append(manage)
        api = ApiStandIn()
        started.append(api)
        blackbox = BlackboxExporter(tmp_path)
        started.append(blackbox)
        apps.wait_up()
        manage.wait_up()
        blackbox.wait_ready()
        jobs = uptime_jobs(
            blackbox.address,
            {
                "Dashboard": f"{apps.url}/readyz",
                "DM Portal": f"{apps.url}/readyz",
                "Manage": f"{manage.url}/readyz",
            },
            api.url,
            tmp_path,
        )
        (tmp_path / "prometheus").mkdir()
        prometheus = ProbingPrometheus(scrape_configs=jobs, workdir=tmp_path / "prometheus")
        started.append(prometheus)
        prometheus.wait_ready()
        yield apps, manage, api, prometheus
    finally:
        for server in reversed(started):
            server.stop()


def _by_service(prometheus, expr: str) -> dict[str, float]:
    result = prometheus.query(expr)
    assert result.get("status") == "success", result
    return {s["metric"].get("service", ""): float(s["value"][1]) for s in result["data"]["result"]}


def _panel_values(prometheus, panels: dict[str, str]) -> dict[str, float | None]:
    values = {}
    for title, expr in panels.items():
        result = prometheus.query(expr)
        assert result.get("status") == "success", (title, result)
        samples = result["data"]["result"]
        values[title] = float(samples[0]["value"][1]) if samples else None
    return values


def _wait_for(prometheus, panels, expected: dict[str, float], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        values = _panel_values(prometheus, panels)
        if values == expected:
            return
        assert time.monotonic() < deadline, (
            f"panels show {values}, expected {expected}; targets: "
            f"{json.dumps(prometheus.api('targets'))[:3000]}"
        )
        time.sleep(0.5)


def test_system_health_has_one_green_red_panel_per_service():
    panels = uptime_panels()
    assert set(panels) == SERVICES
    for title, expr in panels.items():
        assert f'service="{title}"' in expr and "probe_success" in expr


def test_blackbox_config_passes_the_exporters_own_check():
    if BLACKBOX is None:
        pytest.skip("the blackbox exporter is not installed")
    result = subprocess.run(
        [BLACKBOX, "--config.check", f"--config.file={BLACKBOX_CONFIG}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_blackbox_version_the_tests_run():
    if BLACKBOX is None:
        pytest.skip("the blackbox exporter is not installed")
    out = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True, timeout=30)
    local = re.search(r"version (\d+\.\d+\.\d+)", out.stdout + out.stderr)
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["blackbox"]
    assert service["image"] == f"prom/blackbox-exporter:v{local.group(1)}"
    assert "./ops/prometheus/blackbox.yml:/etc/blackbox/blackbox.yml:ro" in service["volumes"]
    prometheus = compose["services"]["prometheus"]["volumes"]
    assert "./ops/prometheus/targets:/etc/prometheus/targets:ro" in prometheus
    # The apps' probe host names reach the app, which serves each at its own host.
    app = compose["services"]["app"]
    aliases = app["networks"]["default"]["aliases"]
    hosts = dict(pair.split("=") for pair in app["environment"]["DMOBS_APP_HOSTS"].split(","))
    assert sorted(hosts) == sorted(aliases)
    assert set(aliases) <= set(app["environment"]["ALLOWED_HOSTS"].split(","))


@needs_prometheus
@needs_blackbox
def test_each_service_is_green_and_a_service_taken_down_turns_red(stack):
    apps, manage, api, prometheus = stack
    panels = uptime_panels()

    # The readiness endpoint the probes ask answers as the module expects.
    status, _, body = get(f"{manage.url}/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"

    _wait_for(prometheus, panels, {"API": 1, "Dashboard": 1, "DM Portal": 1, "Manage": 1})
    alert = _alert_expr("ServiceUnreachable")
    assert _by_service(prometheus, alert) == {}
    codes = _by_service(prometheus, "probe_http_status_code")
    assert codes == {"API": 200, "Dashboard": 200, "DM Portal": 200, "Manage": 200}

    # Manage's server and the platform API go down; the other apps stay up.
    manage.stop()
    api.stop()
    _wait_for(prometheus, panels, {"API": 0, "Dashboard": 1, "DM Portal": 1, "Manage": 0})
    assert _by_service(prometheus, alert) == {"API": 0, "Manage": 0}
