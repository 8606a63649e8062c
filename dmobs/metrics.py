"""Prometheus metrics of dmobs: the audit write path, audit activity, requests.

HTTP request rate, latency per route, responses by status and exceptions come
from django-prometheus (its middleware); this module adds what is ours. The
names, labels and meaning of every metric are the contract in docs/METRICS.md.

Multiprocess mode: under gunicorn with several workers each worker has its
own counters. When ``PROMETHEUS_MULTIPROC_DIR`` is set (before
prometheus_client is imported), every process writes its values to files in
that directory and ``/metrics`` sums them; gunicorn.conf.py empties the
directory at start and marks dead workers. That is why the queue depth is a
``livesum`` gauge that the writer thread sets, not a function evaluated at
scrape time: a scrape reaches one worker, and only files hold every worker's
value. The spool, on the other hand, is one directory shared by all processes,
so its gauges are read from disk at scrape time by ``SpoolCollector``.

Cardinality: labels take values from bounded sets only. ``action`` and
``resource_type`` are free-form in ``audit_log()``, so values outside the
platform's known vocabulary are counted as ``other``; tenants get a counter of
their own with one label and at most ``DMOBS_METRICS_MAX_TENANTS`` values per
process (the rest are ``other``); per-tenant detail beyond that is a question
for the audit store, not for Prometheus.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# A ``_created`` series per counter doubles the series count and no dashboard uses it.
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

ACTOR_TYPES = frozenset({"human", "agent", "system"})
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


# --- the spool, read at scrape time ---------------------------------------------


class SpoolCollector(Collector):
    """Gauges of the spool directory, read from disk when Prometheus scrapes."""

    def __init__(self, directory: Path | str | None = None):
        self._directory = directory

    def directory(self) -> Path | None:
        if self._directory is not None:
            return Path(self._directory)
        try:
            from django.conf import settings

            return Path(settings.AUDIT_SPOOL_DIR)
        except Exception:  # noqa: BLE001 - no settings: nothing to report
            return None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from dmobs.spool import REJECTED_SUFFIX, SPOOL_SUFFIX, TORN_SUFFIX

        files = 0
        size = 0
        oldest: float | None = None
        torn = 0
        directory = self.directory()
        if directory is not None and directory.is_dir():
            for entry in os.scandir(directory):
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # replayed and removed while we looked
                if entry.name.endswith(SPOOL_SUFFIX):
                    files += 1
                    size += stat.st_size
                    oldest = stat.st_mtime if oldest is None else min(oldest, stat.st_mtime)
                elif entry.name.endswith((TORN_SUFFIX, REJECTED_SUFFIX)):
                    torn += 1
        yield GaugeMetricFamily(
            "dmobs_audit_spool_pending_files", "Spool files waiting to be replayed.", value=files
        )
        yield GaugeMetricFamily(
            "dmobs_audit_spool_pending_bytes", "Bytes in spool files waiting.", value=size
        )
        yield GaugeMetricFamily(
            "dmobs_audit_spool_oldest_age_seconds",
            "Age of the oldest waiting spool file (0 when none).",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest),
        )
        yield GaugeMetricFamily(
            "dmobs_audit_spool_quarantined_files",
            "Quarantine files: unreadable spool lines, entries the store refused (need a person).",
            value=torn,
        )


SPOOL_COLLECTOR = SpoolCollector()
prometheus_client.REGISTRY.register(SPOOL_COLLECTOR)


def multiprocess_dir() -> str | None:
    # Only the upper-case name: the lower-case one is deprecated in prometheus_client.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render_latest() -> tuple[bytes, str]:
    """The exposition text of every metric of this process (or of all workers)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(SPOOL_COLLECTOR)
    else:
        registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
