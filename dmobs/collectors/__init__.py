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

The modules: ``base`` (``CachedCollector``), ``bullmq``, ``activity``, ``llm``,
and ``platform`` (their registry and ``/metrics/platform``'s exposition). This
file imports none of them: ``dmobs.collectors.routers`` is loaded by Django's
router while the models are still being defined.
"""
