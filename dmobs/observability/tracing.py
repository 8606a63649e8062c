"""OpenTelemetry tracing, configured once per process, and the tracing API of
the platform's hops (the Python side of the seed's ``tracing.ts``).

Call ``configure_tracing()`` from process entry points only (manage.py, wsgi,
asgi, gunicorn's ``post_fork``), never at import time of a views module. A real
SDK tracer provider is always installed, so trace ids exist for logs and audit
entries even when nothing is exported; spans are exported over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. It instruments Django (server spans,
but not for ``/healthz``, ``/readyz`` and ``/metrics``), the database drivers,
and outgoing HTTP through ``requests``, ``httpx`` and ``urllib3`` (client
spans, W3C ``traceparent`` sent along). Spans use the current (stable) HTTP
semantic conventions; the resource carries ``service.name``,
``service.version`` and ``deployment.environment.name``.

The API for other code (each documented with an example in the README,
"Observability"):

- ``current_trace_id()`` / ``current_span_id()``: the ids to stamp on a document
  another writer stores (``event_logs.traceId``, ``activity_runs.traceId``,
  ``llm_calls.traceId``), as ``audit_log()`` does for ``audit_logs``.
- ``inject_job_context(payload_carrier, queue=...)`` when a job is enqueued and
  ``job_span(carrier, queue=...)`` when it runs: one trace from the request
  that enqueued it to the worker that ran it, whatever the queue.
- The audit writer's batch spans link to the request spans of their entries
  (``dmobs.audit.writer``).

When an SDK provider is already installed (the test suite installs one with an
in-memory exporter), it is kept: only the instrumentations are added.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind

from dmobs import __version__
from dmobs.observability.logger import get_logger, request_identity

log = get_logger("dmobs.tracing")

_lock = threading.Lock()
_configured_pid: int | None = None
# Providers that already got the OTLP exporter. A provider inherited across a
# fork keeps its processors (the SDK's BatchSpanProcessor restarts its thread
# in the child), so a second configure_tracing() in the child must not add one.
_exporting: set[int] = set()

SPAN_ATTR_USER = "enduser.id"
SPAN_ATTR_TENANT = "dmobs.tenant_id"
SPAN_ATTR_REQUEST_ID = "dmobs.request_id"

# Probes and scrapes get no server span (they run every few seconds; the
# readiness checks' queries are not traced either, see dmobs.observability.health).
UNTRACED_URLS = r"^https?://[^/]+/(healthz|readyz|metrics)/?\??$"

_tracer = trace.get_tracer("dmobs")


def configure_tracing(*, service_name: str | None = None) -> TracerProvider:
    """Install the tracer provider and instrumentations (idempotent per process)."""
    global _configured_pid
    # The instrumentations read this once, when the first of them instruments:
    # "http" gives the stable HTTP names (http.request.method,
    # http.response.status_code, url.full, server.address, ...).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    with _lock:
        provider = trace.get_tracer_provider()
        if _configured_pid == os.getpid() and isinstance(provider, TracerProvider):
            return provider
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider(resource=_resource(service_name))
            trace.set_tracer_provider(provider)
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        if endpoint and id(provider) not in _exporting:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # The exporter reads the endpoint, headers and timeout from the
            # standard OTEL_EXPORTER_OTLP_* variables itself.
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            _exporting.add(id(provider))
        instrumented = _instrument()
        _configured_pid = os.getpid()
        log.debug("tracing configured", exporter=bool(endpoint), instrumented=instrumented)
        return provider


def _resource(service_name: str | None) -> Resource:
    """service.name, service.version and deployment.environment.name; whatever
    ``OTEL_RESOURCE_ATTRIBUTES`` sets wins."""
    attributes = {
        "service.name": service_name or os.environ.get("OTEL_SERVICE_NAME") or "dmobs",
        "service.version": os.environ.get("DMOBS_VERSION") or __version__,
        "deployment.environment.name": _environment_name(),
    }
    from_env = OTELResourceDetector().detect()
    return Resource.create(attributes).merge(from_env)


def _environment_name() -> str:
    try:
        from django.conf import settings

        if settings.configured:
            return settings.DMOBS_ENV
    except Exception:  # noqa: BLE001 - settings may not be importable yet
        pass
    return os.environ.get("DMOBS_ENV") or "production"


def _instrument() -> list[str]:
    done = []
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().instrument(response_hook=response_hook, excluded_urls=UNTRACED_URLS)
    _order_middleware()
    done.append("django")
    done.extend(_instrument_http_clients())
    try:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    except ImportError:  # pragma: no cover - psycopg is a runtime dependency
        pass
    else:
        if not PsycopgInstrumentor().is_instrumented_by_opentelemetry:
            PsycopgInstrumentor().instrument(enable_commenter=False)
        done.append("psycopg")
    if uses_mongodb():
        try:
            # Needs pymongo, which only MongoDB deployments install.
            from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        except ImportError:
            log.warning("MongoDB is configured but pymongo instrumentation is not installed")
        else:
            if not PymongoInstrumentor().is_instrumented_by_opentelemetry:
                PymongoInstrumentor().instrument()
            done.append("pymongo")
    return done


def _instrument_http_clients() -> list[str]:
    """Client spans and ``traceparent`` for outgoing HTTP (SEMrush, GA4,
    Razorpay, SendGrid, agent dispatch, phone-home callbacks), for each client
    library that is installed. A call through ``requests`` is one span: the
    urllib3 instrumentation stands back under it."""
    done = []
    clients = (
        ("requests", "opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
        ("httpx", "opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
        ("urllib3", "opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
    )
    for library, module_name, class_name in clients:
        if importlib.util.find_spec(library) is None:
            continue
        module = __import__(module_name, fromlist=[class_name])
        instrumentor = getattr(module, class_name)()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(response_hook=_scrub_query_string)
        done.append(library)
    return done


def _scrub_query_string(span: Span, *_args: Any) -> None:
    """Outgoing URLs keep their query keys, not their values: API keys travel
    there (SEMrush's ``key=``), and spans are read by more people than secrets."""
    if span is None or not span.is_recording():
        return
    url = getattr(span, "attributes", {}).get("url.full")
    if not url:
        return
    parts = urlsplit(url)
    if parts.query:
        masked = "&".join(
            f"{pair.partition('=')[0]}=REDACTED" if "=" in pair else pair
            for pair in parts.query.split("&")
        )
        span.set_attribute("url.full", urlunsplit(parts._replace(query=masked)))


CONTEXT_MIDDLEWARE = "dmobs.observability.middleware.RequestContextMiddleware"
PATH_INFO_MIDDLEWARE = "dmobs.observability.middleware.WsgiPathInfoMiddleware"


def _order_middleware() -> None:
    """RequestContextMiddleware outermost, then WsgiPathInfoMiddleware, then the
    tracing middleware the instrumentor inserted at the front.

    Outermost, the context middleware counts and logs the responses that the
    tracing middleware itself makes (it raises DisallowedHost for a bad Host);
    the path fix must run before the tracing middleware reads the path (see
    WsgiPathInfoMiddleware).
    """
    from django.conf import settings

    middleware = [
        m for m in settings.MIDDLEWARE if m not in (CONTEXT_MIDDLEWARE, PATH_INFO_MIDDLEWARE)
    ]
    settings.MIDDLEWARE = [CONTEXT_MIDDLEWARE, PATH_INFO_MIDDLEWARE, *middleware]


def uses_mongodb() -> bool:
    """True when a database of this process is MongoDB (URL or configured engine)."""
    for name in ("DATABASE_URL", "AUDIT_DATABASE_URL", "MONGODB_URI"):
        if (os.environ.get(name) or "").startswith(("mongodb://", "mongodb+srv://")):
            return True
    try:
        from django.conf import settings

        if settings.configured:
            return any("mongodb" in db.get("ENGINE", "") for db in settings.DATABASES.values())
    except Exception:  # noqa: BLE001 - settings may not be importable yet
        pass
    return False


def response_hook(span: Span, request: Any, response: Any) -> None:
    """Name the request on its server span: who, for which tenant, which request id.

    Reads only what the request has loaded (no queries: see
    ``dmobs.observability.logger.request_identity``). Leaves the span's ids on the request and
    in the log context, for the access line and Django's own lines, which are
    written after the span has ended.
    """
    if span is None:
        return
    ctx = span.get_span_context()
    if ctx.is_valid:
        request._dmobs_span_context = ctx
        structlog.contextvars.bind_contextvars(
            traceId=format(ctx.trace_id, "032x"), spanId=format(ctx.span_id, "016x")
        )
    if not span.is_recording():
        return
    request_id = getattr(request, "request_id", None)
    if request_id:
        span.set_attribute(SPAN_ATTR_REQUEST_ID, request_id)
    user_ref, tenant_ref = request_identity(request)
    if user_ref:
        span.set_attribute(SPAN_ATTR_USER, user_ref)
    if tenant_ref:
        span.set_attribute(SPAN_ATTR_TENANT, tenant_ref)


# --- ids for other writers --------------------------------------------------------


def current_trace_id() -> str | None:
    """The current trace id as 32 lowercase hex digits (the stored ``traceId``),
    or None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_span_id() -> str | None:
    """The current span id as 16 lowercase hex digits, or None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None


# --- jobs: one trace from the enqueuer to the worker ---------------------------------


def inject_job_context(
    carrier: MutableMapping[str, str] | None = None,
    *,
    queue: str,
    system: str | None = None,
) -> MutableMapping[str, str]:
    """Record the enqueue as a producer span and put its context in ``carrier``.

    ``carrier`` is a dict that travels with the job (a field of its payload);
    it gets W3C ``traceparent`` (and ``tracestate``) keys. Returns it.
    """
    carrier = {} if carrier is None else carrier
    attributes = {
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": queue,
    }
    if system:
        attributes["messaging.system"] = system
    with _tracer.start_as_current_span(
        f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        propagate.inject(carrier)
    return carrier


@contextmanager
def job_span(
    carrier: Mapping[str, str] | None,
    *,
    queue: str,
    system: str | None = None,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """Run a job as a consumer span continuing the trace in ``carrier``.

    A carrier without context (a job enqueued by code that does not use
    ``inject_job_context``) starts a new trace. An exception raised inside is
    recorded on the span and re-raised. Log lines written inside carry the
    job's trace; the request log context of the thread is not touched.
    """
    parent = propagate.extract(dict(carrier or {}))
    span_attributes = {
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        **(attributes or {}),
    }
    if system:
        span_attributes["messaging.system"] = system
    with _tracer.start_as_current_span(
        name or f"process {queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=span_attributes,
    ) as span:
        yield span
