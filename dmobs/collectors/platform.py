"""The platform collectors' registry and the exposition of ``/metrics/platform``
(the collectors are described in ``dmobs.collectors``)."""

from __future__ import annotations

import threading

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics import exposition as openmetrics

from dmobs.collectors.activity import ActivityCollector
from dmobs.collectors.base import CachedCollector
from dmobs.collectors.bullmq import BullMQCollector
from dmobs.collectors.llm import LlmCollector

_registry: CollectorRegistry | None = None
_registry_lock = threading.Lock()


def platform_collectors() -> list[CachedCollector]:
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
