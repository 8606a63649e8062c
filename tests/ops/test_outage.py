"""The database taken away under a running app: gunicorn on PostgreSQL through
a TCP proxy the test cuts, scraped by a real Prometheus evaluating the alert
rules. The 500s that the middleware raises (the session cannot be read) reach
the 5xx series and the 5xx alert expression, readiness fails while liveness
holds, and every 500 is logged under its own request id, once."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from ruamel.yaml import YAML

from dmobs.models import Membership, Tenant, User
from tests.live_helpers import Gunicorn, child_env, get, read_json_lines, sign_in
from tests.ops.test_prometheus import ALERTS, PROMETHEUS, PrometheusServer
from tests.tcpproxy import TcpProxy

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not installed"),
]

PASSWORD = "outage-pass-2026"


def _alert_expr(name: str) -> str:
    rules = YAML(typ="safe").load(ALERTS.read_text())
    (expr,) = [r["expr"] for g in rules["groups"] for r in g["rules"] if r["alert"] == name]
    return expr


def _values(prometheus, expr: str) -> list[float]:
    result = prometheus.query(expr)
    assert result.get("status") == "success", result
    return [float(sample["value"][1]) for sample in result["data"]["result"]]


def _wait(predicate, what: str, timeout: float = 60, detail=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {detail()}"
        time.sleep(0.3)


@pytest.fixture
def outage_stack(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the outage test takes PostgreSQL away: set DATABASE_URL=postgres://...")
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    user_part = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    (tmp_path / "prom").mkdir()
    (tmp_path / "prometheus").mkdir()
    env = child_env(
        DJANGO_SETTINGS_MODULE="tests.settings_live",
        DATABASE_URL=f"postgres://{user_part}@127.0.0.1:{proxy.port}/{db['NAME']}",
        AUDIT_WRITER_MODE="thread",
        AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
        LOG_FILE=str(tmp_path / "app.log"),
        LOG_LEVEL="INFO",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        ALLOWED_HOSTS="127.0.0.1",
    )
    app = Gunicorn(env, workers=2, threads=2)
    prometheus = None
    try:
        app.wait_up()
        prometheus = PrometheusServer(
            target=app.url.removeprefix("http://"), workdir=tmp_path / "prometheus"
        )
        prometheus.wait_ready()
        yield proxy, app, prometheus, tmp_path / "app.log"
    finally:
        if prometheus is not None:
            prometheus.stop()
        proxy.restore()
        app.stop()
        proxy.close()


def test_database_outage_is_seen_by_metrics_alerts_probes_and_logs(outage_stack):
    proxy, app, prometheus, log_file = outage_stack
    user = User.objects.create_user("sarah", password=PASSWORD)
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    opener, status, sign_in_headers = sign_in(app.url, "sarah", PASSWORD)
    assert status == 302
    sign_in_id = sign_in_headers["X-Request-ID"]
    assert get(f"{app.url}/", opener=opener)[0] == 200
    _wait(lambda: _values(prometheus, 'dmobs_ready{job="dmobs"}') == [1.0], "ready")

    proxy.cut()
    failures = []
    for _ in range(30):
        status, headers, _ = get(f"{app.url}/", opener=opener)
        failures.append((status, headers["X-Request-ID"]))
    assert {status for status, _ in failures} == {500}

    # Liveness holds, readiness fails and says which checks.
    assert get(f"{app.url}/healthz")[0] == 200
    status, _, body = get(f"{app.url}/readyz")
    assert status == 503
    answer = json.loads(body)
    assert answer["status"] == "not ready"
    assert answer["checks"]["default"].startswith("failed: ")

    # Prometheus sees the 500s (made in a middleware), the alert expressions go true.
    five_hundreds = 'sum(increase(dmobs_http_responses_total{job="dmobs", status="500"}[2m]))'
    _wait(
        lambda: (_values(prometheus, five_hundreds) or [0])[0] >= 25,
        "the 500s in Prometheus",
        detail=lambda: (prometheus.query(five_hundreds), prometheus.api("targets")),
    )
    _wait(lambda: _values(prometheus, _alert_expr("HighServerErrorRate")), "HighServerErrorRate")
    _wait(lambda: _values(prometheus, _alert_expr("ServiceNotReady")), "ServiceNotReady")
    assert _values(prometheus, 'up{job="dmobs"}') == [1.0]
    # Every 500 was an unhandled exception, counted by type (the driver's errors).
    by_type = 'sum by (type) (dmobs_http_exceptions_total{job="dmobs"})'
    _wait(
        lambda: sum(_values(prometheus, by_type)) >= 30,
        "the exceptions in Prometheus",
        detail=lambda: prometheus.query(by_type)["data"]["result"],
    )
    types = {r["metric"]["type"] for r in prometheus.query(by_type)["data"]["result"]}
    assert "OperationalError" in types, types

    # Each 500 is logged under its own id (not the sign-in's), one error line each.
    ids = {request_id for _, request_id in failures}
    assert len(ids) == 30 and sign_in_id not in ids

    def all_access_lines():
        got = read_json_lines(log_file)
        access = [x for x in got if x.get("event") == "request" and x.get("requestId") in ids]
        return got if len(access) == len(ids) else None

    lines = _wait(all_access_lines, "the access lines")
    for request_id in ids:
        own = [line for line in lines if line.get("requestId") == request_id]
        errors = [line for line in own if line["level"] == "error"]
        assert len(errors) == 1, errors
        # Django's "Internal Server Error" line with the driver's traceback.
        assert errors[0]["logger"] == "django.request", errors[0]
        assert "psycopg" in errors[0].get("exception", ""), errors[0]
        (access,) = [line for line in own if line["event"] == "request"]
        assert access["status"] == 500
    assert not [
        line for line in lines if line.get("requestId") == sign_in_id and line.get("status") == 500
    ]

    # Back: readiness recovers by itself.
    proxy.restore()
    _wait(lambda: get(f"{app.url}/readyz")[0] == 200, "readiness after the outage")
