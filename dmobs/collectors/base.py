"""``CachedCollector``: what every platform collector shares (a cache per
scrape period, its own duration and up gauges)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import structlog
from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric
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
