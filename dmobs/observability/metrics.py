"""Prometheus metrics of dmobs: the audit write path, audit activity, requests.

Requests are measured by ``dmobs.observability.middleware.RequestContextMiddleware``, the
outermost middleware, so a response made by any layer (a middleware, the view,
a template, a streaming body that fails after the headers) is counted with its
real status, and every unhandled exception is counted by type. The names,
labels and meaning of every metric are the contract in docs/METRICS.md.

Multiprocess mode: under gunicorn with several workers each worker has its
own counters. When ``PROMETHEUS_MULTIPROC_DIR`` is set (before
prometheus_client is imported), every process writes its values to files in
that directory and ``/metrics`` sums them; gunicorn.conf.py empties the
directory at start and marks dead workers. That is why the queue depth is a
``livesum`` gauge that the writer thread sets, not a function evaluated at
scrape time: a scrape reaches one worker, and only files hold every worker's
value. The spool, on the other hand, is one directory shared by all processes,
so its gauges are read from disk at scrape time by ``dmobs.audit.spool.SpoolCollector``.

Cardinality: labels take values from bounded sets only. ``action`` and
``resource_type`` are free-form in ``audit_log()``, so values outside the
platform's known vocabulary are counted as ``other``; tenants get a counter of
their own with one label and at most ``DMOBS_METRICS_MAX_TENANTS`` values per
process (the rest are ``other``); per-tenant detail beyond that is a question
for the audit store, not for Prometheus.

Why one module of about 450 lines: it declares every metric the process
exposes, and docs/METRICS.md is its contract line for line
(tests/ops/test_metrics_doc.py compares them); one file is one place to check.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from dmobs.observability.health import readiness
from dmobs.vocabulary import ACTOR_TYPES

# A ``_created`` series per counter doubles the series count, and Prometheus
# (2.x, and 3.x without a feature flag) does not use it for increase(). The
# first event of a labelled counter is seen by increase() because the series
# exists at 0 before it: every label combination from a bounded vocabulary is
# created when this module is imported (``_initialise_series``).
prometheus_client.disable_created_metrics()

# --- write path ----------------------------------------------------------------
AUDIT_ACCEPTED = Counter("dmobs_audit_entries_accepted", "Entries accepted by audit_log().")
AUDIT_WRITTEN = Counter("dmobs_audit_entries_written", "Entries written to the audit store.")
AUDIT_SPOOLED = Counter("dmobs_audit_entries_spooled", "Entries written to the disk spool.")
AUDIT_REPLAYED = Counter("dmobs_audit_entries_replayed", "Entries replayed from the spool.")
AUDIT_STORE_ERRORS = Counter("dmobs_audit_store_errors", "Failed writes to the audit store.")
AUDIT_SPOOL_ERRORS = Counter(
    "dmobs_audit_spool_errors", "Failed writes to the spool (entries at risk)."
)
AUDIT_TORN_LINES = Counter(
    "dmobs_audit_spool_torn_lines", "Unreadable spool lines moved to quarantine."
)
AUDIT_REJECTED = Counter(
    "dmobs_audit_entries_rejected",
    "Spooled entries the store refused as invalid, moved to quarantine.",
)
AUDIT_MALFORMED_SKIPPED = Counter(
    "dmobs_audit_malformed_entries_skipped",
    "Stored entries left out of a list or export: createdAt missing or not a date "
    "(each is logged with its id and stays reachable by id on Manage).",
)
AUDIT_QUEUE_DEPTH = Gauge(
    "dmobs_audit_queue_depth",
    "Entries waiting in the writer queues of live processes.",
    multiprocess_mode="livesum",
)

# --- audit activity -------------------------------------------------------------
AUDIT_ACTIVITY = Counter(
    "dmobs_audit_activity",
    "Audit entries accepted, by actor type, action and resource type.",
    ["actor_type", "action", "resource_type"],
)
AUDIT_ACTIVITY_BY_TENANT = Counter(
    "dmobs_audit_activity_by_tenant",
    "Audit entries accepted, by tenant id ('platform' for platform-level entries).",
    ["tenant"],
)
AUDIT_EXPORTS = Counter(
    "dmobs_audit_exports", "Exports of the audit list, by app and format.", ["app", "format"]
)
AUDIT_EXPORT_ROWS = Counter(
    "dmobs_audit_export_rows", "Rows written by audit list exports.", ["app", "format"]
)

# --- requests -----------------------------------------------------------------
HTTP_IN_FLIGHT = Gauge(
    "dmobs_http_requests_in_flight",
    "Requests being handled right now.",
    multiprocess_mode="livesum",
)
HTTP_RESPONSES = Counter(
    "dmobs_http_responses",
    "Responses by method, route and status, whatever layer made them.",
    ["method", "route", "status"],
)
HTTP_EXCEPTIONS = Counter(
    "dmobs_http_exceptions",
    "Unhandled exceptions of requests (any layer, streaming bodies too), by class and route.",
    ["type", "route"],
)
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_DURATION_NAME = "dmobs_http_request_duration_seconds"
HTTP_DURATION = Histogram(
    HTTP_DURATION_NAME,
    "Time from the request reaching the outermost middleware to the end of its body; "
    "buckets carry the trace id of a request that fell in them as an exemplar.",
    ["method", "route"],
    buckets=HTTP_DURATION_BUCKETS,
)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route label of a request no URL pattern matched (404s, refused hosts).
NO_ROUTE = "none"
# Routes of probes and scrapes: left out of the 5xx share and its alert.
PROBE_ROUTES = ("healthz", "readyz", "metrics")

KNOWN_ACTIONS = frozenset(
    {
        "approved",
        "rejected",
        "created",
        "updated",
        "deleted",
        "enabled",
        "disabled",
        "logged_in",
        "logged_out",
        "started",
        "completed",
        "failed",
        "published",
        "sent",
        "auto_activated",
        "exported",
    }
)
KNOWN_RESOURCE_TYPES = frozenset(
    {
        "activity",
        "strategy",
        "context_file",
        "tenant",
        "user",
        "skill",
        "agent_config",
        "plan",
        "payment",
        "session",
        "goal",
        "deliverable",
        "period",
        "audit_log",
    }
)
EXPORT_APPS = frozenset({"dashboard", "portal", "manage"})
EXPORT_FORMATS = frozenset({"csv", "ndjson"})
OTHER = "other"
PLATFORM = "platform"

_tenants_seen: set[str] = set()
_tenants_lock = threading.Lock()


def _bounded(value: Any, known: frozenset[str]) -> str:
    return value if value in known else OTHER


def _max_tenants() -> int:
    from django.conf import settings

    return getattr(settings, "DMOBS_METRICS_MAX_TENANTS", 200)


def tenant_label(tenant_id: str | None) -> str:
    """The ``tenant`` label for an entry: its tenant id while under the cap."""
    if not tenant_id:
        return PLATFORM
    if tenant_id in _tenants_seen:
        return tenant_id
    with _tenants_lock:
        if tenant_id in _tenants_seen:
            return tenant_id
        if len(_tenants_seen) >= _max_tenants():
            return OTHER
        _tenants_seen.add(tenant_id)
        return tenant_id


# (actor_type, action, resource_type, tenant_id) -> the two labelled counters.
# audit_log() runs on the caller's thread: resolving labels costs ~10 µs a call,
# a dict hit well under 1. Bounded; past the bound, labels are resolved each time.
_ACTIVITY_CHILDREN: dict[tuple, tuple[Any, Any]] = {}
_ACTIVITY_CHILDREN_MAX = 10_000


def entry_accepted(entry: dict[str, Any]) -> None:
    """Count one entry handed to the writer (called by both writer kinds)."""
    AUDIT_ACCEPTED.inc()
    key = (
        entry.get("actor_type"),
        entry.get("action"),
        entry.get("resource_type"),
        entry.get("tenant_id"),
    )
    children = _ACTIVITY_CHILDREN.get(key)
    if children is None:
        children = (
            AUDIT_ACTIVITY.labels(
                actor_type=_bounded(key[0], ACTOR_TYPES),
                action=_bounded(key[1], KNOWN_ACTIONS),
                resource_type=_bounded(key[2], KNOWN_RESOURCE_TYPES),
            ),
            AUDIT_ACTIVITY_BY_TENANT.labels(tenant=tenant_label(key[3])),
        )
        if len(_ACTIVITY_CHILDREN) < _ACTIVITY_CHILDREN_MAX:
            _ACTIVITY_CHILDREN[key] = children
    children[0].inc()
    children[1].inc()


def record_export(*, app: str, format: str, rows: int) -> None:  # noqa: A002 - the query key
    """Count one export of the audit list (for the screens' export view)."""
    labels = {"app": _bounded(app, EXPORT_APPS), "format": _bounded(format, EXPORT_FORMATS)}
    AUDIT_EXPORTS.labels(**labels).inc()
    AUDIT_EXPORT_ROWS.labels(**labels).inc(max(0, rows))


def _initialise_series() -> None:
    """Create every series of a bounded label set at 0.

    A labelled child created by its first ``inc()`` starts life at 1: the
    first scrape Prometheus sees is 1, and ``increase()`` (which only measures
    change between samples) reports 0 for that event. Created at 0 before any
    event, the series is scraped at 0 first and the event shows up. Tenants
    are an open set and cannot be created ahead; docs/METRICS.md says so.
    """
    for actor_type in (*ACTOR_TYPES, OTHER):
        for action in (*KNOWN_ACTIONS, OTHER):
            for resource_type in (*KNOWN_RESOURCE_TYPES, OTHER):
                AUDIT_ACTIVITY.labels(
                    actor_type=actor_type, action=action, resource_type=resource_type
                )
    for app in (*EXPORT_APPS, OTHER):
        for fmt in (*EXPORT_FORMATS, OTHER):
            AUDIT_EXPORTS.labels(app=app, format=fmt)
            AUDIT_EXPORT_ROWS.labels(app=app, format=fmt)


_initialise_series()


# --- requests ------------------------------------------------------------------


def method_label(method: str | None) -> str:
    return method if method in HTTP_METHODS else OTHER


# The route label of the root URL pattern (its route is the empty string).
ROOT_ROUTE = "/"


def route_label(request: Any) -> str:
    """The URL pattern a request matched (bounded), or ``none``."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return NO_ROUTE
    return _route(match.route)


def _route(route: str | None) -> str:
    return route or ROOT_ROUTE


# (method, route, le) -> the latest exemplar of that bucket in this process.
# prometheus_client keeps exemplars in memory only, never in multiprocess files;
# under gunicorn each scrape adds those of the worker that answers it.
_EXEMPLARS: dict[tuple[str, str, str], Exemplar] = {}
_EXEMPLARS_MAX = 5_000


def _bucket_le(seconds: float) -> str:
    for bound in HTTP_DURATION_BUCKETS:
        if seconds <= bound:
            return prometheus_client.utils.floatToGoString(bound)
    return "+Inf"


# (method, route) pairs whose 500 series exists (see initialise_route_series).
_ROUTES_SEEN: set[tuple[str, str]] = set()
# The methods whose 500 series every route gets at start.
_START_METHODS = ("GET", "POST")


def _ensure_error_series(method: str, route: str) -> None:
    if (method, route) not in _ROUTES_SEEN:
        _ROUTES_SEEN.add((method, route))
        HTTP_RESPONSES.labels(method=method, route=route, status="500")


def initialise_route_series(urlconf: str | None = None) -> int:
    """Create the ``status="500"`` series of every route (GET and POST) at 0.

    The first 500s of a route would otherwise create its series at their count,
    and ``increase()`` would not see them: the burst of 500s at the start of an
    outage is what the 5xx panel and alert must show. Routes met later (another
    method) get theirs at their first response. Returns how many routes.
    """
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix: str) -> Iterator[str]:
        for pattern in patterns:
            part = str(pattern.pattern)
            # Joined as Django joins ResolverMatch.route (a regex's "^" dropped).
            route = prefix + (part[1:] if prefix and part.startswith("^") else part)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield _route(route)

    routes = {NO_ROUTE, *walk(get_resolver(urlconf).url_patterns, "")}
    for route in routes:
        for method in _START_METHODS:
            _ensure_error_series(method, route)
    return len(routes)


def observe_request(
    *,
    method: str,
    route: str,
    status: int,
    seconds: float,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> None:
    """Count one finished response and its duration (with the trace as exemplar)."""
    method = method_label(method)
    _ensure_error_series(method, route)
    HTTP_RESPONSES.labels(method=method, route=route, status=str(status)).inc()
    exemplar = None
    if trace_id:
        exemplar = {"trace_id": trace_id}
        if span_id:
            exemplar["span_id"] = span_id
    HTTP_DURATION.labels(method=method, route=route).observe(seconds, exemplar=exemplar)
    if exemplar and multiprocess_dir():
        key = (method, route, _bucket_le(seconds))
        if key in _EXEMPLARS or len(_EXEMPLARS) < _EXEMPLARS_MAX:
            _EXEMPLARS[key] = Exemplar(exemplar, seconds, time.time())


def count_exception(exc: BaseException, route: str) -> None:
    HTTP_EXCEPTIONS.labels(type=type(exc).__name__, route=route).inc()


class _LocalExemplars(Collector):
    """Multiprocess mode: the summed histogram, with this process's exemplars."""

    def __init__(self, source: Collector):
        self._source = source

    def collect(self) -> Iterator[Any]:
        name = HTTP_DURATION_NAME + "_bucket"
        for family in self._source.collect():
            if family.name == HTTP_DURATION_NAME and _EXEMPLARS:
                family.samples = [
                    s._replace(
                        exemplar=_EXEMPLARS.get(
                            (s.labels.get("method"), s.labels.get("route"), s.labels.get("le"))
                        )
                    )
                    if s.name == name
                    else s
                    for s in family.samples
                ]
            yield family


# --- collectors read at scrape time ----------------------------------------------
#
# Besides the default registry, ``render_latest()`` builds a registry of its own
# in multiprocess mode; the collectors that read shared state at scrape time
# (the spool directory: ``dmobs.audit.spool``; readiness, below) are registered
# through ``register_scrape_collector()`` so both registries carry them.

SCRAPE_COLLECTORS: list[Collector] = []


def register_scrape_collector(collector: Collector) -> Collector:
    """Expose ``collector`` on /metrics in either mode; returns it."""
    prometheus_client.REGISTRY.register(collector)
    SCRAPE_COLLECTORS.append(collector)
    return collector


def multiprocess_dir() -> str | None:
    # Only the upper-case name: the lower-case one is deprecated in prometheus_client.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render_latest(accept: str = "") -> tuple[bytes, str]:
    """The exposition of every metric of this process (or of all workers).

    OpenMetrics when the scraper asks for it (Prometheus does when exemplar
    storage is on): only that format carries exemplars.
    """
    if multiprocess_dir():
        registry = CollectorRegistry()
        registry.register(_LocalExemplars(multiprocess.MultiProcessCollector(None)))
        for collector in SCRAPE_COLLECTORS:
            registry.register(collector)
    else:
        registry = prometheus_client.REGISTRY
    if "application/openmetrics-text" in accept:
        return openmetrics.generate_latest(registry), openmetrics.CONTENT_TYPE_LATEST
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST


class ReadinessCollector(Collector):
    """``dmobs_ready`` (1/0) and one gauge per check, from the readiness checks
    run when Prometheus scrapes (the ServiceNotReady alert reads them)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without it, registering would run collect(): queries at import time.
        yield GaugeMetricFamily("dmobs_ready", "")
        yield GaugeMetricFamily("dmobs_readiness_check", "", labels=["check"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.conf import settings

        if not settings.configured:
            return
        checks = readiness()
        ready = GaugeMetricFamily(
            "dmobs_ready", "1 when every readiness check passes (what /readyz answers)."
        )
        ready.add_metric([], 1.0 if all(c.ok for c in checks) else 0.0)
        yield ready
        per_check = GaugeMetricFamily(
            "dmobs_readiness_check", "1 when the readiness check passes.", labels=["check"]
        )
        for check in checks:
            per_check.add_metric([check.name], 1.0 if check.ok else 0.0)
        yield per_check


READINESS_COLLECTOR = register_scrape_collector(ReadinessCollector())
