"""OpenTelemetry tracing, configured once per process.

Call ``configure_tracing()`` from process entry points only (manage.py, wsgi,
asgi, gunicorn's ``post_fork``), never at import time of a views module. A real
SDK tracer provider is always installed, so trace ids exist for logs and audit
entries even when nothing is exported; spans are exported over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_lock = threading.Lock()
_configured_pid: int | None = None


def configure_tracing(*, service_name: str | None = None) -> TracerProvider:
    """Install the tracer provider and instrumentations (idempotent per process)."""
    global _configured_pid
    with _lock:
        provider = trace.get_tracer_provider()
        if _configured_pid == os.getpid() and isinstance(provider, TracerProvider):
            return provider
        if not isinstance(provider, TracerProvider):
            name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "dmobs"
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            trace.set_tracer_provider(provider)
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _instrument()
        _configured_pid = os.getpid()
        return provider


def _instrument() -> None:
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().instrument(response_hook=_response_hook)
    try:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    except ImportError:  # pragma: no cover - psycopg is a runtime dependency
        return
    if not PsycopgInstrumentor().is_instrumented_by_opentelemetry:
        PsycopgInstrumentor().instrument(enable_commenter=False)


def _response_hook(span, request, response) -> None:
    """Put who made the request on the server span."""
    if span is None or not span.is_recording():
        return
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        span.set_attribute("enduser.id", user.ref_id)
    tenant_ref = getattr(request, "audit_tenant_ref", None)
    if tenant_ref:
        span.set_attribute("dmobs.tenant_id", tenant_ref)
