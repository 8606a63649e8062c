"""The telemetry of the app as it runs: gunicorn (2 workers x 4 threads) on a
database of its own, exporting spans over OTLP/HTTP to a receiver in the test
that decodes them, writing LOG_FILE, scraped by a real Prometheus.

- Concurrent requests, some refused early: every log line's requestId, userId,
  tenantId and traceId belong to its own request (checked against the
  response's X-Request-ID and the request's server span).
- An inbound request calling out through requests and httpx: one trace, and
  the remote side receives the traceparent.
- The audit writer's batch spans link to the sign-in requests whose entries
  they store.
- One failed action and one export: the dashboard's increase() shows 1 each;
  the request-latency histogram carries trace ids as exemplars.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.live_helpers import (
    Gunicorn,
    HeaderRecorder,
    OtlpReceiver,
    child_env,
    get,
    read_json_lines,
    sign_in,
)
from tests.ops.test_prometheus import (
    PROMETHEUS,
    PrometheusServer,
    dashboard_queries,
    grafana_to_promql,
)

PASSWORD = "live-pass-2026"
SEED = textwrap.dedent(
    f"""
    import json, django
    django.setup()
    from dmobs.models import Membership, Tenant, User
    acme = Tenant.objects.create(name="Acme", slug="acme")
    globex = Tenant.objects.create(name="Globex", slug="globex")
    users = {{}}
    for name, tenants in (("sarah", [acme]), ("gabe", [globex]), ("rita", [acme, globex])):
        user = User.objects.create_user(name, password="{PASSWORD}")
        for tenant in tenants:
            Membership.objects.create(user=user, tenant=tenant, role="admin")
        users[name] = {{
            "ref": user.ref_id,
            "tenant": tenants[0].ref_id if len(tenants) == 1 else None,
        }}
    print(json.dumps(users))
    """
)


class Stack:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.otlp = OtlpReceiver()
        self.remote = HeaderRecorder()
        self.log_file = workdir / "app.log"
        (workdir / "prom").mkdir()
        self.env = child_env(
            DJANGO_SETTINGS_MODULE="tests.settings_live",
            DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
            AUDIT_WRITER_MODE="thread",
            AUDIT_FLUSH_INTERVAL="0.05",
            AUDIT_SPOOL_DIR=str(workdir / "spool"),
            LOG_FILE=str(self.log_file),
            LOG_LEVEL="INFO",
            PROMETHEUS_MULTIPROC_DIR=str(workdir / "prom"),
            OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_SERVICE_NAME="dmobs-live",
            DMOBS_ENV="live-test",
            ALLOWED_HOSTS="127.0.0.1",
        )
        from tests.live_helpers import manage

        manage(self.env, "migrate", "--no-input", "-v", "0")
        import subprocess
        import sys

        seeded = subprocess.run(
            [sys.executable, "-c", SEED],
            cwd=Path(__file__).resolve().parents[2],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        self.users = json.loads(seeded.stdout.strip().splitlines()[-1])
        self.app = Gunicorn(self.env, workers=2, threads=4)
        self.app.wait_up()

    def server_spans(self) -> list:
        return [s for s in self.otlp.spans if s.kind == "SERVER"]

    def close(self) -> None:
        self.app.stop()
        self.otlp.close()
        self.remote.close()


@pytest.fixture(scope="module")
def stack():
    workdir = Path(tempfile.mkdtemp(prefix="dmobs-live-"))
    live = Stack(workdir)
    try:
        yield live
    finally:
        live.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _span_by_request_id(spans) -> dict[str, object]:
    return {
        s.attributes["dmobs.request_id"]: s
        for s in spans
        if s.kind == "SERVER" and "dmobs.request_id" in s.attributes
    }


# Loggers that write while a request is served.
REQUEST_LOGGERS = ("dmobs.request", "django.request", "django.security", "tests.telemetry")


def test_concurrent_requests_each_log_under_their_own_identity(stack):
    base = stack.app.url
    sessions = {}
    for name in ("sarah", "gabe", "rita"):
        opener, status, _ = sign_in(base, name, PASSWORD)
        assert status == 302, name
        sessions[name] = opener

    # (who, path, headers): signed-in lines, early refusals (bad Host: 400 from
    # the first middleware), 404s, a view that fails, a screen naming its tenant.
    plan = []
    for i in range(6):
        for name in ("sarah", "gabe", "rita"):
            plan.append((name, "/t/logs", {}))
            plan.append((None, "/t/logs", {"Host": f"evil-{i}.example"}))
        plan.append(("gabe", "/t/view-fails", {}))
        plan.append(("sarah", "/dashboard/settings/audit-log", {}))
        plan.append((None, "/no-such-page/", {}))

    def run(item):
        who, path, headers = item
        opener = sessions[who] if who else None
        status, response_headers, _ = get(base + path, opener=opener, headers=headers)
        return who, path, headers, status, response_headers["X-Request-ID"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(run, plan))

    statuses = {(path, bool(headers)): status for _, path, headers, status, _ in results}
    assert statuses[("/t/logs", True)] == 400
    assert statuses[("/t/view-fails", False)] == 500
    assert statuses[("/no-such-page/", False)] == 404
    assert statuses[("/dashboard/settings/audit-log", False)] == 200
    expected = {}
    for who, path, _headers, _status, request_id in results:
        user = stack.users[who] if who else None
        tenant = user["tenant"] if user else None
        if path == "/dashboard/settings/audit-log":
            tenant = stack.users["sarah"]["tenant"]
        expected[request_id] = (user["ref"] if user else None, tenant)
    assert len(expected) == len(plan)  # one id per request

    refused = {rid for _, _, headers, _, rid in results if headers}
    with_spans = set(expected) - refused
    spans = stack.otlp.wait_for(lambda s: with_spans <= set(_span_by_request_id(s)))
    span_of = _span_by_request_id(spans)

    deadline = time.monotonic() + 10
    while True:
        lines = [
            line for line in read_json_lines(stack.log_file) if line.get("requestId") in expected
        ]
        access = [line for line in lines if line["event"] == "request"]
        if len(access) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(line["requestId"] for line in access) == sorted(expected)  # one each

    checked = 0
    for line in lines:
        user_ref, tenant_ref = expected[line["requestId"]]
        assert line.get("userId") == user_ref if user_ref else "userId" not in line, line
        if line["logger"] in ("dmobs.request", "tests.telemetry") and tenant_ref:
            assert line.get("tenantId") == tenant_ref, line
        elif not tenant_ref:
            assert "tenantId" not in line, line
        span = span_of.get(line["requestId"])
        if span is not None:
            assert line["traceId"] == span.trace_id, line
        else:
            assert "traceId" not in line, line  # refused before its span began
        checked += 1
    # Lines of the refusals (DisallowedHost, access) and the failures were among them.
    loggers = {line["logger"] for line in lines}
    assert {"dmobs.request", "django.request", "tests.telemetry"} <= loggers
    assert any(line["logger"].startswith("django.security") for line in lines)
    assert checked > 3 * len(plan) // 2

    # No line a request wrote is without a request id (sign-ins included); one
    # access line per request: gunicorn's own is not written, probes get none.
    every_line = read_json_lines(stack.log_file)
    for line in every_line:
        if line["logger"].startswith(REQUEST_LOGGERS):
            assert line.get("requestId"), line
    assert not [line for line in every_line if line["logger"] == "gunicorn.access"]
    assert not [line for line in every_line if line.get("path") in ("/healthz", "/metrics")]
    assert any(line["logger"] == "gunicorn.error" for line in every_line)
    # The probes gunicorn answered while starting (/healthz) made no span.
    assert not [s for s in spans if s.attributes.get("url.path") == "/healthz"]


def test_an_inbound_request_and_its_outgoing_calls_are_one_trace(stack):
    status, headers, body = get(f"{stack.app.url}/t/calls-out?target={stack.remote.url}")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["statuses"] == [200, 200]
    trace_id = answer["trace_id"]

    calls = dict(stack.remote.calls)
    assert set(calls) == {"/via-requests?key=secret-api-key", "/via-httpx"}
    for path, call in calls.items():
        version, trace, parent, flags = call["traceparent"].split("-")
        assert (version, trace) == ("00", trace_id), path
        assert int(flags, 16) & 1, path  # sampled

    # The server span ends after the response is sent, so it may arrive in a later
    # batch than the two client spans: wait for all three.
    def whole_trace(spans) -> bool:
        kinds = [x.kind for x in spans if x.trace_id == trace_id]
        return kinds.count("CLIENT") >= 2 and "SERVER" in kinds

    spans = stack.otlp.wait_for(whole_trace)
    in_trace = [s for s in spans if s.trace_id == trace_id]
    (server,) = [s for s in in_trace if s.kind == "SERVER"]
    clients = [s for s in in_trace if s.kind == "CLIENT"]
    assert server.name == "GET t/calls-out"
    assert server.attributes["http.route"] == "t/calls-out"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["dmobs.request_id"] == headers["X-Request-ID"]
    # One span per call (requests is not doubled by its urllib3 underneath),
    # each the parent the remote side was told about.
    assert len(clients) == 2
    by_parent = {call["traceparent"].split("-")[2] for call in calls.values()}
    assert {s.span_id for s in clients} == by_parent
    for client in clients:
        assert client.parent_id == server.span_id
        assert client.attributes["http.request.method"] == "GET"
        assert client.attributes["http.response.status_code"] == 200
        assert client.attributes["server.address"] == "127.0.0.1"
        assert "secret-api-key" not in client.attributes.get("url.full", "")
    urls = {s.attributes.get("url.full") for s in clients}
    assert f"{stack.remote.url}/via-requests?key=REDACTED" in urls
    assert server.resource["service.name"] == "dmobs-live"
    assert server.resource["deployment.environment.name"] == "live-test"
    assert server.resource["service.version"]


def test_writer_batch_spans_link_to_the_requests_of_their_entries(stack):
    _opener, status, headers = sign_in(stack.app.url, "gabe", PASSWORD)
    assert status == 302
    request_id = headers["X-Request-ID"]

    def linked(spans):
        sign_in_span = _span_by_request_id(spans).get(request_id)
        if sign_in_span is None:
            return False
        target = (sign_in_span.trace_id, sign_in_span.span_id)
        return any(s.name == "audit.write_batch" and target in s.links for s in spans)

    spans = stack.otlp.wait_for(linked)
    sign_in_span = _span_by_request_id(spans)[request_id]
    assert "audit_log" in sign_in_span.events
    target = (sign_in_span.trace_id, sign_in_span.span_id)
    (batch,) = [s for s in spans if s.name == "audit.write_batch" and target in s.links]
    # A trace of its own (it serves many requests), linked, not parented.
    assert batch.trace_id != sign_in_span.trace_id and batch.parent_id == ""
    assert batch.attributes["audit.batch.entries"] >= 1


needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (apt-get install prometheus; .ci/run does)",
)


def _panel_expr(dashboard: str, panel: str) -> str:
    (expr,) = [e for d, p, e in dashboard_queries() if (d, p) == (dashboard, panel)]
    return grafana_to_promql(expr)


def _scalar(prometheus, expr: str) -> float | None:
    result = prometheus.query(expr)
    assert result.get("status") == "success", result
    samples = result["data"]["result"]
    return float(samples[0]["value"][1]) if samples else None


def _wait_scrapes(prometheus, count: int) -> None:
    start = _scalar(prometheus, 'count_over_time(up{job="dmobs"}[10m])') or 0
    deadline = time.monotonic() + 60
    while (_scalar(prometheus, 'count_over_time(up{job="dmobs"}[10m])') or 0) < start + count:
        assert time.monotonic() < deadline, prometheus.api("targets")
        time.sleep(0.3)


@needs_prometheus
def test_one_event_shows_as_one_and_latency_carries_exemplars(stack, tmp_path):
    target = stack.app.url.removeprefix("http://")
    prometheus = PrometheusServer(target=target, workdir=tmp_path, features=("exemplar-storage",))
    try:
        prometheus.wait_ready()
        _wait_scrapes(prometheus, 3)
        failed_expr = _panel_expr("Audit activity", "Failed actions (24h)")
        exports_expr = _panel_expr("Audit activity", "Exports (24h)")
        assert _scalar(prometheus, failed_expr) == 0
        assert _scalar(prometheus, exports_expr) == 0

        # One failed sign-in (audit action "failed") and one export.
        _opener, status, _ = sign_in(stack.app.url, "sarah", "not-the-password")
        assert status == 200
        opener, status, _ = sign_in(stack.app.url, "sarah", PASSWORD)
        status, _, body = get(
            f"{stack.app.url}/dashboard/settings/audit-log/export?format=csv", opener=opener
        )
        assert status == 200 and b"," in body, body[:200]
        _wait_scrapes(prometheus, 4)

        # increase() extrapolates a little past the last sample; the panel shows 1.
        failed = _scalar(prometheus, failed_expr)
        exports = _scalar(prometheus, exports_expr)
        assert round(failed) == 1, failed
        assert round(exports) == 1, exports

        # Exemplars: trace ids of real server spans on the latency buckets.
        deadline = time.monotonic() + 30
        while True:
            now = time.time()
            result = prometheus.api(
                "query_exemplars",
                query="dmobs_http_request_duration_seconds_bucket",
                start=str(now - 600),
                end=str(now + 5),
            )
            assert result["status"] == "success", result
            exemplars = [
                (series["seriesLabels"], e)
                for series in result["data"]
                for e in series["exemplars"]
            ]
            if exemplars or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert exemplars, "no exemplars scraped"
        traces = {s.trace_id: s for s in stack.otlp.spans if s.kind == "SERVER"}
        matched = [(labels, e) for labels, e in exemplars if e["labels"]["trace_id"] in traces]
        assert matched, exemplars[:3]
        labels, exemplar = matched[0]
        span = traces[exemplar["labels"]["trace_id"]]
        assert labels["route"] == span.attributes.get("http.route", "none")
        assert exemplar["labels"]["span_id"] == span.span_id
    finally:
        prometheus.stop()
