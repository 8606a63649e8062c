"""dmobs.observability.middleware: every response and exception counted at the outermost
layer, a request context that cannot leak into another request, one access
line per request, and telemetry that makes no queries of its own."""

from __future__ import annotations

import traceback

import pytest
import structlog
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from dmobs.models import Membership, Tenant, User
from dmobs.observability.logger import CURRENT_REQUEST, TENANT_SESSION_KEY
from tests.obs_helpers import captured_json_logs

pytestmark = pytest.mark.django_db


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def telemetry_urls(settings):
    settings.ROOT_URLCONF = "tests.telemetry_urls"
    middleware = list(settings.MIDDLEWARE)
    at = middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1
    middleware.insert(at, "tests.telemetry_urls.FailingMiddleware")
    settings.MIDDLEWARE = middleware


@pytest.fixture
def sarah():
    user = User.objects.create_user("sarah", password="pw-123456789")
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return user


LAYERS = [
    # (layer, path, headers, exception class name, route label)
    ("middleware", "/t/logs", {"HTTP_X_FAIL_IN_MIDDLEWARE": "1"}, "MiddlewareFailure", "none"),
    ("view", "/t/view-fails", {}, "ViewFailure", "t/view-fails"),
    ("template", "/t/template-fails", {}, "TemplateFailure", "t/template-fails"),
    ("streaming body", "/t/body-fails", {}, "BodyFailure", "t/body-fails"),
]


@pytest.mark.parametrize(
    ("layer", "path", "headers", "exc", "route"), LAYERS, ids=[x[0] for x in LAYERS]
)
def test_every_layer_counts_a_500_and_its_exception(
    client, telemetry_urls, layer, path, headers, exc, route
):
    client.raise_request_exception = False
    responses = {"method": "GET", "route": route, "status": "500"}
    before = sample("dmobs_http_responses_total", **responses)
    before_exc = sample("dmobs_http_exceptions_total", type=exc, route=route)

    with captured_json_logs() as lines:
        response = client.get(path, **headers)
        if layer == "streaming body":
            assert response.status_code == 200  # the headers went out before the failure
            with pytest.raises(RuntimeError, match="the body failed"):
                b"".join(response.streaming_content)
        else:
            assert response.status_code == 500

    assert sample("dmobs_http_responses_total", **responses) == before + 1
    assert sample("dmobs_http_exceptions_total", type=exc, route=route) == before_exc + 1
    (access,) = [line for line in lines if line["event"] == "request"]
    assert access["status"] == 500 and access["path"] == path
    assert access["requestId"] == response["X-Request-ID"]


def test_the_5xx_count_ignores_nothing_a_later_layer_would_have_seen(client, telemetry_urls):
    """A 404 (no route) and a refused host (400, made by the tracing middleware
    before any URL is resolved) are counted too."""
    before_404 = sample("dmobs_http_responses_total", method="GET", route="none", status="404")
    before_400 = sample("dmobs_http_responses_total", method="GET", route="none", status="400")
    assert client.get("/no-such-page/").status_code == 404
    assert client.get("/t/logs", HTTP_HOST="evil.example").status_code == 400
    assert (
        sample("dmobs_http_responses_total", method="GET", route="none", status="404")
        == before_404 + 1
    )
    assert (
        sample("dmobs_http_responses_total", method="GET", route="none", status="400")
        == before_400 + 1
    )


def test_a_refused_request_is_logged_under_its_own_id_not_the_previous_users(
    client, telemetry_urls, sarah
):
    client.force_login(sarah)
    with captured_json_logs() as lines:
        first = client.get("/t/logs")
        refused = client.get("/t/logs", HTTP_HOST="evil.example")
    assert first.status_code == 200 and refused.status_code == 400
    first_id, refused_id = first["X-Request-ID"], refused["X-Request-ID"]
    assert first_id != refused_id
    first_lines = [line for line in lines if line.get("requestId") == first_id]
    assert {line["userId"] for line in first_lines} == {sarah.ref_id}
    # Everything after the first response: the refusal's own lines only.
    later = lines[lines.index(first_lines[-1]) + 1 :]
    assert later, "the refused request wrote no line"
    assert {line.get("requestId") for line in later} == {refused_id}
    for line in later:
        assert "userId" not in line and "tenantId" not in line, line
        assert line.get("traceId") != first_lines[0]["traceId"]
    assert any(line["logger"] == "django.security.DisallowedHost" for line in later)
    (access,) = [line for line in later if line["event"] == "request"]
    assert access["status"] == 400


def test_context_is_cleared_when_the_response_is_closed(client, telemetry_urls, sarah):
    client.force_login(sarah)
    client.get("/t/logs")
    assert structlog.contextvars.get_contextvars() == {}
    assert CURRENT_REQUEST.get() is None


def test_streaming_response_keeps_its_context_until_the_body_is_sent(client, telemetry_urls, sarah):
    client.force_login(sarah)
    with captured_json_logs() as lines:
        response = client.get("/t/streams")
        body = b"".join(response.streaming_content)
    assert body == b"one\ntwo\n"
    request_id = response["X-Request-ID"]
    (running,) = [line for line in lines if line["event"] == "streaming body running"]
    assert running["requestId"] == request_id
    # The access line comes after the body, with the whole duration.
    assert lines[-1]["event"] == "request" and lines[-1]["requestId"] == request_id
    assert lines.index(running) < len(lines) - 1
    assert structlog.contextvars.get_contextvars() == {}
    assert CURRENT_REQUEST.get() is None


def test_one_access_line_without_the_query_string_and_none_for_probes(client, telemetry_urls):
    with captured_json_logs() as lines:
        client.get("/t/logs?q=private+search+words&token=abc")
        client.get("/healthz")
        client.get("/readyz")
        client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    access = [line for line in lines if line["event"] == "request"]
    assert [(line["path"], line["status"]) for line in access] == [("/t/logs", 200)]
    text = repr(lines)
    assert "private" not in text and "token=abc" not in text


TELEMETRY_MODULES = (
    "dmobs/observability/logger.py",
    "dmobs/observability/tracing.py",
    "dmobs/observability/metrics.py",
)


def test_telemetry_makes_no_database_query(client, telemetry_urls, sarah, span_exporter):
    """No query is made by the tracing hook or the log processors: a signed-in
    request's only queries are the app's own (the time-zone middleware loads the
    user), and an anonymous one makes none."""
    stacks = []

    def record(execute, sql, params, many, context):
        stacks.append((sql, [frame.filename for frame in traceback.extract_stack()]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record), captured_json_logs() as lines:
        b"".join(client.get("/t/streams").streaming_content)
        client.get("/t/logs")
    assert stacks == []
    assert all("userId" not in line for line in lines)

    client.force_login(sarah)
    span_exporter.clear()
    with connection.execute_wrapper(record), captured_json_logs() as lines:
        client.get("/t/logs")
    from_telemetry = [
        sql for sql, files in stacks if any(f.endswith(TELEMETRY_MODULES) for f in files)
    ]
    assert from_telemetry == []
    assert len(stacks) == 2, [sql for sql, _ in stacks]  # the session and the user
    (span,) = [s for s in span_exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert span.attributes["enduser.id"] == sarah.ref_id
    assert span.attributes["dmobs.tenant_id"] == sarah.memberships.get().tenant.ref_id


def test_user_and_tenant_come_from_what_the_request_loaded(client, telemetry_urls, sarah):
    """The view loads the user (session + user: its own two queries); the
    lines name the user and the tenant remembered at sign-in, nothing more."""
    client.force_login(sarah)
    assert client.session[TENANT_SESSION_KEY] == sarah.memberships.get().tenant.ref_id
    with CaptureQueriesContext(connection) as queries, captured_json_logs() as lines:
        client.get("/t/logs")
    assert len(queries.captured_queries) == 2, [q["sql"] for q in queries.captured_queries]
    tenant_ref = sarah.memberships.get().tenant.ref_id
    for event in ("view line", "request"):
        (line,) = [x for x in lines if x["event"] == event]
        assert (line["userId"], line["tenantId"]) == (sarah.ref_id, tenant_ref)


def test_readiness_and_liveness(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"default": "ok", "audit": "ok"}}
    assert client.get("/healthz").content == b"ok"


def test_every_route_has_its_500_series_before_the_first_500(client):
    """So increase() sees the first burst of 500s of a route (the start of an
    outage), the series exist at 0 from the first request on."""
    client.get("/healthz")
    for route in ("/", "manage/audit", "portal/audit/<str:entry_id>/", "none"):
        for method in ("GET", "POST"):
            value = REGISTRY.get_sample_value(
                "dmobs_http_responses_total", {"method": method, "route": route, "status": "500"}
            )
            assert value is not None, (method, route)


def test_a_hanging_check_fails_as_a_timeout_instead_of_holding_the_probe(monkeypatch):
    import threading

    from dmobs.observability import health

    release = threading.Event()
    monkeypatch.setattr(health, "_ping", lambda alias: release.wait(10))
    try:
        checks = health.readiness(timeout=0.3)
    finally:
        release.set()
    assert [(c.name, c.ok, c.error) for c in checks] == [
        ("default", False, "Timeout"),
        ("audit", False, "Timeout"),
    ]


def test_latency_histogram_carries_the_request_trace_as_exemplar(
    client, telemetry_urls, span_exporter
):
    response = client.get("/t/logs")
    (span,) = [s for s in span_exporter.get_finished_spans() if s.kind.name == "SERVER"]
    trace_id = format(span.context.trace_id, "032x")
    scrape = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_ACCEPT="application/openmetrics-text"
    )
    assert scrape["Content-Type"].startswith("application/openmetrics-text")
    text = scrape.content.decode()
    (bucket,) = [
        line
        for line in text.splitlines()
        if line.startswith("dmobs_http_request_duration_seconds_bucket{")
        and 'route="t/logs"' in line
        and f'trace_id="{trace_id}"' in line
    ]
    assert f'span_id="{format(span.context.span_id, "016x")}"' in bucket
    assert response["X-Request-ID"]
    # The plain text format (no exemplars) is still what a plain scrape gets.
    plain = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert (
        plain["Content-Type"].startswith("text/plain") and "trace_id" not in plain.content.decode()
    )
