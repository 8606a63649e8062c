"""The outermost layer of every request: log context, request metrics, access line.

``RequestContextMiddleware`` is the first middleware (``configure_tracing()``
keeps it ahead of the tracing middleware it adds), so it sees every response,
whichever layer made it: a middleware that raised (Django turns the exception
into a 500 or 400 response before it reaches us), the view, a template, or a
streaming body that fails after the headers were sent.

Request context, per request and on every path:

1. ``request_started`` (sent before any middleware runs) and then this
   middleware clear structlog's context variables and the current request, so
   no line can carry the identity of a request served earlier on this thread.
2. ``requestId`` is bound: a well-formed incoming ``X-Request-ID`` (set by a
   proxy) or a new one; it is returned in the ``X-Request-ID`` header.
   ``userId`` and ``tenantId`` are added to each line as it is written
   (``dmobs.observability.logger.add_request_identity``), from what the request has already
   loaded: telemetry never makes a database query of its own.
3. When the response is closed (``request_finished``: after a streaming body
   has been sent, after Django's own 4xx/5xx lines), the context is cleared.

Each request (but probes and scrapes, ``QUIET_PATHS``) ends with one ``request``
access line: method, path without the query string, status, duration
(``DMOBS_ACCESS_LOG=false`` turns it off, e.g. for benchmarks). Every response is
counted in ``dmobs_http_responses_total`` and timed in
``dmobs_http_request_duration_seconds`` (exemplar: its trace); unhandled
exceptions in ``dmobs_http_exceptions_total`` (``got_request_exception`` and
failing streaming bodies). A streaming body that fails after its headers went
out is counted and logged as a 500: the response failed, whatever the status
line said.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from dmobs.observability import metrics
from dmobs.observability.logger import CURRENT_REQUEST, get_logger

log = get_logger("dmobs.request")

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is kept when it looks like one; anything else (a place to smuggle
# text into log lines) is replaced by our own.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Scrapes and health probes every few seconds would drown the access log.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if _REQUEST_ID_RE.match(incoming):
        return incoming
    return uuid.uuid4().hex


def reset_request_context(**_kwargs: Any) -> None:
    """Forget every request-scoped logging value of this thread.

    Connected to ``request_started`` and ``request_finished``, and called when
    the middleware starts: nothing bound for one request survives into the next.
    """
    structlog.contextvars.clear_contextvars()
    CURRENT_REQUEST.set(None)


def count_request_exception(sender: Any = None, request: HttpRequest | None = None, **_kw) -> None:
    """``got_request_exception`` receiver: Django sends it for every unhandled
    exception of a request, in a middleware as in a view or template, while the
    exception is being handled."""
    exc = sys.exc_info()[1]
    if exc is None:
        return
    try:
        metrics.count_exception(exc, metrics.route_label(request))
    except Exception:  # noqa: BLE001 - telemetry must never fail a request
        pass


class RequestContextMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        try:
            metrics.initialise_route_series()
        except Exception:  # noqa: BLE001 - a broken URLconf fails requests, not telemetry
            log.warning("could not list the routes for the request metrics", exc_info=True)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        reset_request_context()
        request_id = request_id_for(request)
        request.request_id = request_id
        structlog.contextvars.bind_contextvars(requestId=request_id)
        CURRENT_REQUEST.set(request)
        started = time.perf_counter()
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            response = self.get_response(request)
        except BaseException:
            # Django's handler turns exceptions into responses before they get
            # here; this is for what escapes it anyway.
            metrics.HTTP_IN_FLIGHT.dec()
            _finish(request, 500, started)
            raise
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        if response.streaming:
            # Measured and logged when the body has been sent (or has failed).
            response.streaming_content = _watched(response.streaming_content, request, started)
            response._resource_closers.append(lambda: _streaming_closed(request, response, started))
        else:
            metrics.HTTP_IN_FLIGHT.dec()
            _finish(request, response.status_code, started)
        return response


def _finish(request: HttpRequest, status: int, started: float) -> None:
    """Count, time and log one finished response (once per request)."""
    if getattr(request, "_dmobs_finished", False):
        return
    request._dmobs_finished = True
    seconds = time.perf_counter() - started
    trace_id, span_id = _request_trace(request)
    try:
        metrics.observe_request(
            method=request.method or "",
            route=metrics.route_label(request),
            status=status,
            seconds=seconds,
            trace_id=trace_id,
            span_id=span_id,
        )
    except Exception:  # noqa: BLE001 - telemetry must never fail a request
        pass
    if settings.DMOBS_ACCESS_LOG and request.path not in QUIET_PATHS:
        # The path only: query strings may hold search terms.
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round(seconds * 1000, 1),
        )


def _request_trace(request: HttpRequest) -> tuple[str | None, str | None]:
    """The server span's ids, which the tracing response hook left on the request."""
    ctx = getattr(request, "_dmobs_span_context", None)
    if ctx is None or not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def _watched(content: Iterator[Any], request: HttpRequest, started: float) -> Iterator[Any]:
    """Pass a streaming body through; count and log it as a 500 if it fails."""
    try:
        yield from content
    except Exception as exc:
        metrics.count_exception(exc, metrics.route_label(request))
        log.error(
            "streaming response failed after its headers were sent",
            path=request.path,
            exc_info=True,
        )
        request._dmobs_body_failed = True
        raise


def _streaming_closed(request: HttpRequest, response: HttpResponse, started: float) -> None:
    """Response closer (the server calls ``close()`` after sending the body, also
    when sending failed or the client went away): before ``request_finished``."""
    metrics.HTTP_IN_FLIGHT.dec()
    failed = getattr(request, "_dmobs_body_failed", False)
    _finish(request, 500 if failed else response.status_code, started)


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
