"""Collectors of the platform's state for the seed dashboards (``/metrics/platform``).

Unlike ``dmobs.observability.metrics`` (counters this process increments as it works), these
read the state of the platform when Prometheus scrapes:

* ``bullmq``: job counts of the platform's BullMQ queues in Redis;
* ``activity``: the activity pipeline, HITL backlog and tenant health, derived
  from ``audit_logs`` with bounded queries;
* ``llm``: LLM spend and tokens from the platform's ``llm_calls``, and the
  tenants' monthly spend caps.

They are served on their own endpoint, scraped by their own Prometheus job,
so their database and Redis reads never slow the app's own ``/metrics``.
Every collector keeps what it read for ``DMOBS_COLLECTOR_CACHE_SECONDS``, so
several scrapers (or Prometheus replicas) cost one read. docs/METRICS.md lists
each metric with its source.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector


class CachedCollector(Collector):
    """A collector whose families are read at most once per cache period.

    A failing read is reported as ``dmobs_collector_up{collector=...} 0`` and
    logged; the scrape still answers with the other collectors' metrics.
    """

    name = "collector"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def read(self) -> list[Metric]:  # pragma: no cover - abstract
        raise NotImplementedError

    def cache_seconds(self) -> float:
        from django.conf import settings

        return settings.DMOBS_COLLECTOR_CACHE_SECONDS

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds():
                started = time.perf_counter()
                try:
                    families = self.read()
                    up = 1.0
                except Exception:
                    import structlog

                    structlog.get_logger("dmobs.collectors").exception(
                        "collector failed", collector=self.name
                    )
                    families, up = [], 0.0
                took = GaugeMetricFamily(
                    "dmobs_collector_duration_seconds",
                    "Time the collector took for its last read.",
                    labels=["collector"],
                )
                took.add_metric([self.name], time.perf_counter() - started)
                ok = GaugeMetricFamily(
                    "dmobs_collector_up",
                    "1 when the collector's last read succeeded.",
                    labels=["collector"],
                )
                ok.add_metric([self.name], up)
                self._cached = (now, [*families, took, ok])
            families = self._cached[1]
        yield from families


_registry: CollectorRegistry | None = None
_registry_lock = threading.Lock()


def platform_collectors() -> list[CachedCollector]:
    from dmobs.collectors.activity import ActivityCollector
    from dmobs.collectors.bullmq import BullMQCollector
    from dmobs.collectors.llm import LlmCollector

    return [BullMQCollector(), ActivityCollector(), LlmCollector()]


def platform_registry() -> CollectorRegistry:
    global _registry
    with _registry_lock:
        if _registry is None:
            registry = CollectorRegistry(auto_describe=False)
            for collector in platform_collectors():
                registry.register(collector)
            _registry = registry
        return _registry


def reset_platform_registry() -> None:
    """Forget the collectors and their caches (tests, after changing settings)."""
    global _registry
    with _registry_lock:
        _registry = None


def render_platform(accept: str = "") -> tuple[bytes, str]:
    """The platform metrics; in OpenMetrics (with exemplars) when the scraper accepts it."""
    registry = platform_registry()
    if "application/openmetrics-text" in accept:
        return openmetrics.generate_latest(registry), openmetrics.CONTENT_TYPE_LATEST
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
