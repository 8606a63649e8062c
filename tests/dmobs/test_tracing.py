"""dmobs.observability.tracing: provider, instrumentation, response hook, OTLP export."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from dmobs.models import Membership, Tenant, User
from dmobs.observability import tracing
from tests.obs_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def server_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


def test_configure_tracing_keeps_the_installed_sdk_provider_and_is_idempotent():
    installed = trace.get_tracer_provider()
    assert isinstance(installed, TracerProvider)
    assert tracing.configure_tracing() is installed
    assert tracing.configure_tracing() is installed
    assert DjangoInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.django_db
def test_request_produces_a_server_span_with_its_route_and_request_id(client, span_exporter):
    response = client.get("/accounts/login/?next=/x", HTTP_X_REQUEST_ID="req-from-proxy-0001")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-from-proxy-0001"
    (span,) = server_spans(span_exporter)
    assert span.name == "GET accounts/login/"
    # The current (stable) HTTP semantic conventions, not the old names.
    assert span.attributes["http.route"] == "accounts/login/"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert "http.method" not in span.attributes and "http.status_code" not in span.attributes
    assert span.attributes["dmobs.request_id"] == "req-from-proxy-0001"
    assert "enduser.id" not in span.attributes


@pytest.mark.django_db
def test_probes_and_scrapes_are_not_traced(client, span_exporter):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path, REMOTE_ADDR="127.0.0.1").status_code == 200, path
    # No server span, and the readiness queries made no query spans either.
    assert span_exporter.get_finished_spans() == ()


def test_resource_names_service_version_and_environment():
    resource = tracing._resource(None)
    from dmobs import __version__

    assert resource.attributes["service.version"] == __version__
    assert resource.attributes["deployment.environment.name"] == "production"


@pytest.mark.django_db
def test_response_hook_names_the_user_and_their_only_tenant(client, span_exporter):
    user = User.objects.create_user("sarah", password="pw-123456789")
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    client.force_login(user)
    span_exporter.clear()

    client.get("/")

    (span,) = server_spans(span_exporter)
    assert span.attributes["enduser.id"] == user.ref_id
    assert span.attributes["dmobs.tenant_id"] == tenant.ref_id


@pytest.mark.django_db
def test_response_hook_leaves_tenant_out_when_the_user_has_several(client, span_exporter):
    user = User.objects.create_user("rita", password="pw-123456789")
    for slug in ("acme", "globex"):
        tenant = Tenant.objects.create(name=slug, slug=slug)
        Membership.objects.create(user=user, tenant=tenant)
    client.force_login(user)
    span_exporter.clear()

    client.get("/")

    (span,) = server_spans(span_exporter)
    assert span.attributes["enduser.id"] == user.ref_id
    assert "dmobs.tenant_id" not in span.attributes


@pytest.mark.django_db
def test_response_hook_prefers_the_tenant_the_view_named(rf, tracer, span_exporter):
    user = User.objects.create_user("rita", password="pw-123456789")
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=user, tenant=tenant)
    request = rf.get("/portal/audit")
    request.user = user
    request.audit_tenant_ref = "t-chosen-by-view"

    with tracer.start_as_current_span("server") as span:
        tracing.response_hook(span, request, None)

    # (On PostgreSQL the driver's query spans are there too.)
    (finished,) = [s for s in span_exporter.get_finished_spans() if s.name == "server"]
    assert finished.attributes["dmobs.tenant_id"] == "t-chosen-by-view"
    assert finished.attributes["enduser.id"] == user.ref_id


def test_uses_mongodb_reads_the_database_urls(monkeypatch):
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("AUDIT_DATABASE_URL", "postgres://x@127.0.0.1/db")
    assert tracing.uses_mongodb() is False
    monkeypatch.setenv("AUDIT_DATABASE_URL", "mongodb://127.0.0.1:27017/audit")
    assert tracing.uses_mongodb() is True


class _OtlpSink(http.server.BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP receiver: keeps the raw protobuf bodies it is sent."""

    received: list[tuple[str, bytes]]

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def otlp_sink():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _OtlpSink)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run_python(code: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
    environ.update(DJANGO_SETTINGS_MODULE="tests.settings", **env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fresh_process_exports_spans_over_otlp_http(otlp_sink):
    out = _run_python(
        """
        import json
        from dmobs.observability.tracing import configure_tracing
        provider = configure_tracing()
        from opentelemetry import trace
        with trace.get_tracer("t").start_as_current_span("exported-span") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        provider.force_flush()
        print(json.dumps({
            "trace_id": trace_id,
            "service": provider.resource.attributes["service.name"],
        }))
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_sink.server_port}",
        OTEL_SERVICE_NAME="dmobs-under-test",
    )
    assert out["service"] == "dmobs-under-test"
    paths = [path for path, _ in otlp_sink.received]
    assert paths == ["/v1/traces"]
    body = otlp_sink.received[0][1]
    assert b"exported-span" in body
    assert b"dmobs-under-test" in body
    assert bytes.fromhex(out["trace_id"]) in body


def test_without_an_exporter_spans_still_have_trace_ids_and_mongodb_is_instrumented():
    """A fresh process with no OTLP endpoint: no processor, valid ids. With a
    mongodb:// URL, pymongo is instrumented when pymongo is installed."""
    out = _run_python(
        """
        import importlib.util, json
        from dmobs.observability.tracing import configure_tracing
        provider = configure_tracing()
        from opentelemetry import trace
        with trace.get_tracer("t").start_as_current_span("local") as span:
            valid = span.get_span_context().is_valid
        pymongo = None
        if importlib.util.find_spec("pymongo"):
            from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
            pymongo = PymongoInstrumentor().is_instrumented_by_opentelemetry
        print(json.dumps({
            "valid": valid,
            "processors": len(provider._active_span_processor._span_processors),
            "pymongo": pymongo,
        }))
        """,
        MONGODB_URI="mongodb://127.0.0.1:27017/dmobs_obs",
    )
    has_pymongo = importlib.util.find_spec("pymongo") is not None
    assert out == {"valid": True, "processors": 0, "pymongo": True if has_pymongo else None}
