"""Job counts of the platform's BullMQ queues, read from Redis.

BullMQ keeps each queue under ``<prefix>:<queue>:`` (prefix ``bull`` unless the
platform sets another) in these keys, which is what BullMQ's own
``Queue.getJobCounts()`` reads:

==================  ===========  ===========================================
state               key          type (how it is counted)
==================  ===========  ===========================================
waiting             ``wait``     list (LLEN); ``paused`` (list) is added, it
                                 holds the waiting jobs of a paused queue in
                                 BullMQ before v5
prioritized         ``prioritized``  sorted set (ZCARD): waiting, with a priority
active              ``active``   list (LLEN)
delayed             ``delayed``  sorted set (ZCARD)
failed              ``failed``   sorted set (ZCARD): the dead-letter queue
completed           ``completed``  sorted set (ZCARD), trimmed by removeOnComplete
waiting-children    ``waiting-children``  sorted set (ZCARD): flow parents
==================  ===========  ===========================================

BullMQ before v5 could leave a marker (an id starting with ``0:``) at the tail
of ``wait``; like ``getJobCounts()``, it is not counted as a job.

All counts of a scrape come from one pipelined round trip (MULTI-less: each
count is exact, the set of them is as consistent as BullMQ's own getter).
The queues are ``DMOBS_BULLMQ_QUEUES``, or, when that is empty, every
``<prefix>:*:meta`` key found by SCAN (each BullMQ queue writes its ``meta``
hash when it is created); discovery is cached for a minute, since SCAN walks
the whole key space. The platform runs one queue per agent role, so the queue
name is the agent role.
"""

from __future__ import annotations

import time

from prometheus_client.core import GaugeMetricFamily, Metric

from dmobs.collectors.base import CachedCollector

# (state, key suffix, Redis type) in the order exported.
STATES = (
    ("waiting", "wait", "list"),
    ("prioritized", "prioritized", "zset"),
    ("active", "active", "list"),
    ("delayed", "delayed", "zset"),
    ("failed", "failed", "zset"),
    ("completed", "completed", "zset"),
    ("waiting-children", "waiting-children", "zset"),
)
DISCOVERY_SECONDS = 60.0
LEGACY_MARKER = b"0:"


class BullMQCollector(CachedCollector):
    name = "bullmq"

    def __init__(self, *, url: str | None = None, prefix: str | None = None, queues=None):
        super().__init__()
        self._url, self._prefix, self._queues = url, prefix, queues
        self._client = None
        self._discovered: tuple[float, list[str]] | None = None

    # configuration (arguments win over settings, for tests and tools)
    def settings(self) -> tuple[str | None, str, list[str]]:
        from django.conf import settings

        url = self._url if self._url is not None else settings.REDIS_URL
        prefix = self._prefix if self._prefix is not None else settings.DMOBS_BULLMQ_PREFIX
        queues = self._queues if self._queues is not None else settings.DMOBS_BULLMQ_QUEUES
        return url, prefix, list(queues)

    def client(self, url: str):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
            )
        return self._client

    def queue_names(self, client, prefix: str, configured: list[str]) -> list[str]:
        if configured:
            return configured
        now = time.monotonic()
        if self._discovered is not None and now - self._discovered[0] < DISCOVERY_SECONDS:
            return self._discovered[1]
        head, tail = f"{prefix}:".encode(), b":meta"
        names = set()
        for key in client.scan_iter(match=f"{prefix}:*:meta", count=1000):
            middle = key[len(head) : -len(tail)]
            if key.startswith(head) and key.endswith(tail) and middle and b":" not in middle:
                names.add(middle.decode())
        self._discovered = (now, sorted(names))
        return self._discovered[1]

    def counts(self) -> dict[str, dict[str, int]] | None:
        """{queue: {state: count}}; None when no Redis is configured."""
        url, prefix, configured = self.settings()
        if not url:
            return None
        client = self.client(url)
        queues = self.queue_names(client, prefix, configured)
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            base = f"{prefix}:{queue}:"
            for _, suffix, kind in STATES:
                if kind == "list":
                    pipe.llen(base + suffix)
                else:
                    pipe.zcard(base + suffix)
            pipe.llen(base + "paused")
            pipe.lindex(base + "wait", -1)
        replies = iter(pipe.execute())
        result: dict[str, dict[str, int]] = {}
        for queue in queues:
            counts = {state: int(next(replies)) for state, _, _ in STATES}
            paused = int(next(replies))
            tail = next(replies)
            if tail is not None and tail.startswith(LEGACY_MARKER) and counts["waiting"]:
                counts["waiting"] -= 1
            counts["waiting"] += paused
            result[queue] = counts
        return result

    def read(self) -> list[Metric]:
        counts = self.counts()
        jobs = GaugeMetricFamily(
            "dmobs_bullmq_jobs",
            "Jobs in a BullMQ queue by state (queue = agent role).",
            labels=["queue", "state"],
        )
        dead = GaugeMetricFamily(
            "dmobs_bullmq_dead_letter_jobs",
            "Failed jobs kept in a BullMQ queue's failed set (the dead-letter queue).",
            labels=["queue"],
        )
        queues = GaugeMetricFamily(
            "dmobs_bullmq_queues", "BullMQ queues found (configured or discovered)."
        )
        for queue, by_state in sorted((counts or {}).items()):
            for state, value in by_state.items():
                jobs.add_metric([queue, state], value)
            dead.add_metric([queue], by_state["failed"])
        queues.add_metric([], len(counts or {}))
        if counts is None:
            return []  # not configured: nothing to say (dmobs_collector_up stays 1)
        return [jobs, dead, queues]
