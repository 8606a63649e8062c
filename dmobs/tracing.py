"""OpenTelemetry tracing, configured once per process.

Call ``configure_tracing()`` from process entry points only (manage.py, wsgi,
asgi, gunicorn's ``post_fork``), never at import time of a views module. A real
SDK tracer provider is always installed, so trace ids exist for logs and audit
entries even when nothing is exported; spans are exported over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

When an SDK provider is already installed (the test suite installs one with an
in-memory exporter), it is kept: only the instrumentations are added.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from dmobs.logger import get_logger

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


def configure_tracing(*, service_name: str | None = None) -> TracerProvider:
    """Install the tracer provider and instrumentations (idempotent per process)."""
    global _configured_pid
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
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "dmobs"
    attributes = {"service.name": name}
    env = os.environ.get("DMOBS_ENV")
    if env:
        attributes["deployment.environment.name"] = env
    # Resource.create() also merges OTEL_RESOURCE_ATTRIBUTES.
    return Resource.create(attributes)


def _instrument() -> list[str]:
    done = []
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().instrument(response_hook=response_hook)
    _put_path_info_fix_first()
    done.append("django")
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


PATH_INFO_MIDDLEWARE = "dmobs.middleware.WsgiPathInfoMiddleware"


def _put_path_info_fix_first() -> None:
    """Run WsgiPathInfoMiddleware before the tracing middleware (see its docstring)."""
    from django.conf import settings

    middleware = list(settings.MIDDLEWARE)
    if middleware and middleware[0] == PATH_INFO_MIDDLEWARE:
        return
    if PATH_INFO_MIDDLEWARE in middleware:
        middleware.remove(PATH_INFO_MIDDLEWARE)
    settings.MIDDLEWARE = [PATH_INFO_MIDDLEWARE, *middleware]


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


def tenant_ref_for_request(request: Any) -> str | None:
    """The tenant a request acts in, cached on the request.

    A view that knows it wins: the screens set ``request.audit_tenant_ref`` to
    the tenant they read, or to ``""`` when they read several (none). Otherwise
    the signed-in user's only tenant membership; otherwise none.
    """
    explicit = getattr(request, "audit_tenant_ref", None)
    if explicit is not None:
        return explicit or None
    cached = getattr(request, "_dmobs_tenant_ref", False)
    if cached is not False:
        return cached
    ref = None
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        from dmobs.audit import tenant_ref_for_user

        try:
            ref = tenant_ref_for_user(user)
        except Exception:  # noqa: BLE001 - telemetry must never fail a request
            ref = None
    request._dmobs_tenant_ref = ref
    return ref


def user_ref_for_request(request: Any) -> str | None:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return getattr(user, "ref_id", None)
    return None


def response_hook(span, request, response) -> None:
    """Put who made the request, and for which tenant, on the server span."""
    if span is None or not span.is_recording():
        return
    user_ref = user_ref_for_request(request)
    if user_ref:
        span.set_attribute(SPAN_ATTR_USER, user_ref)
        tenant_ref = tenant_ref_for_request(request)
        if tenant_ref:
            span.set_attribute(SPAN_ATTR_TENANT, tenant_ref)
    elif getattr(request, "audit_tenant_ref", None):
        span.set_attribute(SPAN_ATTR_TENANT, request.audit_tenant_ref)
