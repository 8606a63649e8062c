"""Per-request log context: who, for which tenant, under which request id.

``RequestContextMiddleware`` sits right after Django's ``AuthenticationMiddleware``.
For each request it clears structlog's context variables (a worker thread
serves many requests) and binds ``requestId`` and, for a signed-in user,
``userId``; ``tenantId`` is added to each line by ``dmobs.logger.add_request_tenant``
when the line is written, so a request that names its tenant itself (the
screens) or logs nothing costs no membership query. Every log line of the
request, structlog's or the stdlib's, then carries them. The request id comes
from a well-formed incoming ``X-Request-ID`` (set by a proxy) or is generated,
is put on the server span, and is returned in the ``X-Request-ID`` response
header. Each request (but health probes and scrapes) ends with one ``request`` access-log line
(``DMOBS_ACCESS_LOG=false`` turns it off, e.g. for benchmarks).

Nothing is cleared after the response on purpose: Django logs 4xx/5xx
responses (``django.request``) after the middleware chain has returned, and
those lines must still carry the request's context.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from opentelemetry import trace

from dmobs import metrics
from dmobs.logger import CURRENT_REQUEST, get_logger
from dmobs.tracing import SPAN_ATTR_REQUEST_ID, user_ref_for_request

log = get_logger("dmobs.request")

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept when it looks like one; anything else (a place to smuggle
# text into log lines) is replaced by our own.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Scrapes and health probes every few seconds would drown the access log.
QUIET_PATHS = frozenset({"/healthz", "/metrics"})


def request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if _REQUEST_ID_RE.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestContextMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        context = {"requestId": request_id}
        user_ref = user_ref_for_request(request)
        if user_ref:
            context["userId"] = user_ref
        structlog.contextvars.bind_contextvars(**context)
        # tenantId: looked up when a line is written (dmobs.logger.add_request_tenant),
        # by which time a screen has usually named it without a query.
        CURRENT_REQUEST.set(request)

        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(SPAN_ATTR_REQUEST_ID, request_id)
        ctx = span.get_span_context()
        if ctx.is_valid:
            # For lines logged after the server span has ended (Django's own
            # 4xx/5xx line); while a span is current its ids win.
            structlog.contextvars.bind_contextvars(
                traceId=format(ctx.trace_id, "032x"), spanId=format(ctx.span_id, "016x")
            )

        started = time.perf_counter()
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            response = self.get_response(request)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()

        # A view may name the tenant it acted in only while it runs (the
        # screens set request.audit_tenant_ref); later lines carry it.
        tenant_ref = getattr(request, "audit_tenant_ref", None)
        if tenant_ref:
            structlog.contextvars.bind_contextvars(tenantId=tenant_ref)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        if settings.DMOBS_ACCESS_LOG and request.path not in QUIET_PATHS:
            # The access log line, inside the server span: it carries the trace.
            # The path only: query strings may hold search terms.
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return response


class WsgiPathInfoMiddleware:
    """Give ``PATH_INFO`` back its WSGI form before the tracing middleware reads it.

    Django replaces ``request.META["PATH_INFO"]`` with the decoded path, so a
    request for ``/manage/audit/%C4%80/`` carries ``"/manage/audit/\u0100/"``
    there. OpenTelemetry's WSGI attribute collection quotes ``PATH_INFO`` as
    latin-1 (as PEP 3333 says it is) and raises ``UnicodeEncodeError`` on it,
    which made any URL with a character past U+00FF a 500 once tracing was on.
    ``configure_tracing()`` puts this middleware first, ahead of the tracing one.
    Django routes on ``request.path_info``, which this leaves alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.META.get("PATH_INFO")
        if isinstance(path, str) and not path.isascii():
            request.META["PATH_INFO"] = path.encode("utf-8", "surrogateescape").decode("latin-1")
        return self.get_response(request)
