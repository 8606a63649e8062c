"""The BullMQ collector against queues made by the real bullmq package in Redis."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dmobs.collectors.bullmq import STATES, BullMQCollector
from tests.bullmq_helpers import QUEUES, REDIS_URL, bullmq_prefix, make_jobs, redis_client

__all__ = ["bullmq_prefix"]  # the fixture


def samples(collector) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_counts_equal_bullmqs_own_get_job_counts(bullmq_prefix):
    expected = make_jobs(bullmq_prefix)
    # The script made every state we export, so equality is not trivially 0 == 0.
    for state in ("waiting", "prioritized", "active", "delayed", "failed"):
        assert sum(counts[state] for counts in expected.values()) > 0, state

    counts = BullMQCollector(url=REDIS_URL, prefix=bullmq_prefix, queues=[]).counts()

    assert sorted(counts) == sorted(QUEUES)  # discovered from the meta keys
    for queue in QUEUES:
        assert counts[queue] == {state: expected[queue][state] for state, _, _ in STATES}


def test_metrics_name_queue_and_state_and_the_dead_letter_count(bullmq_prefix):
    expected = make_jobs(bullmq_prefix, queues=("writer", "outreach"))
    collector = BullMQCollector(url=REDIS_URL, prefix=bullmq_prefix, queues=[])
    got = samples(collector)

    for queue in ("writer", "outreach"):
        key = ("dmobs_bullmq_jobs", (("queue", queue), ("state", "waiting")))
        assert got[key] == expected[queue]["waiting"]
        dead = ("dmobs_bullmq_dead_letter_jobs", (("queue", queue),))
        assert got[dead] == expected[queue]["failed"] > 0
    assert got[("dmobs_bullmq_queues", ())] == 2
    assert got[("dmobs_collector_up", (("collector", "bullmq"),))] == 1
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'dmobs_bullmq_dead_letter_jobs{queue="writer"} 2.0' in text


def test_configured_queues_are_read_even_when_empty(bullmq_prefix):
    make_jobs(bullmq_prefix, queues=("writer",))
    collector = BullMQCollector(url=REDIS_URL, prefix=bullmq_prefix, queues=["writer", "nobody"])
    counts = collector.counts()
    assert set(counts) == {"writer", "nobody"}
    assert counts["nobody"] == dict.fromkeys(counts["nobody"], 0)
    assert counts["writer"]["waiting"] == 9


def test_a_paused_queues_waiting_list_and_a_legacy_marker_are_counted_like_bullmq(
    bullmq_prefix,
):
    """BullMQ < 5 kept a paused queue's jobs in ``paused`` and could leave a
    ``0:`` marker at the tail of ``wait``; getJobCounts() skips the marker."""
    client = redis_client()
    base = f"{bullmq_prefix}:old:"
    client.rpush(base + "wait", "3", "2", "0:1700000000000")
    client.rpush(base + "paused", "7")
    client.hset(base + "meta", "opts.maxLenEvents", 10000)
    counts = BullMQCollector(url=REDIS_URL, prefix=bullmq_prefix, queues=[]).counts()
    assert counts == {"old": {**dict.fromkeys(counts["old"], 0), "waiting": 3}}


def test_unreachable_redis_is_reported_not_raised():
    collector = BullMQCollector(url="redis://127.0.0.1:9/0", prefix="bull", queues=["writer"])
    got = samples(collector)
    assert got[("dmobs_collector_up", (("collector", "bullmq"),))] == 0
    assert not any(name == "dmobs_bullmq_jobs" for name, _ in got)


@pytest.mark.parametrize("url", [None, ""])
def test_without_redis_url_there_are_no_queue_metrics(settings, url):
    settings.REDIS_URL = url
    got = samples(BullMQCollector())
    assert got == {
        ("dmobs_collector_duration_seconds", (("collector", "bullmq"),)): pytest.approx(0, abs=1),
        ("dmobs_collector_up", (("collector", "bullmq"),)): 1,
    }
