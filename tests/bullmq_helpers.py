"""Real BullMQ queues in the Redis of the machine, for the collector tests.

Jobs are made by the real ``bullmq`` npm package (``ops/bullmq/demo-jobs.mjs``,
pinned in package.json) under a key prefix of this test run's own, and every key
under it is deleted afterwards. Redis is 127.0.0.1:6379 unless
``TEST_REDIS_URL`` says otherwise; without Redis or Node the tests skip, except
in CI (``CI=true``), where ``.ci/run`` starts Redis and a skip would hide a gap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "ops" / "bullmq" / "demo-jobs.mjs"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUES = ("strategist", "writer", "research", "outreach", "analytics")


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"no Redis at {REDIS_URL}: {exc}")
    return client


def delete_prefix(client, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def make_jobs(prefix: str, queues=QUEUES) -> dict[str, dict[str, int]]:
    """Run the demo-jobs script; BullMQ's own getJobCounts() per queue."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "bullmq").is_dir():
        _unavailable("node and node_modules/bullmq are needed (make install)")
    result = subprocess.run(
        [node, str(SCRIPT), "--redis", REDIS_URL, "--prefix", prefix, "--queues", ",".join(queues)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def bullmq_prefix():
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    client = redis_client()
    prefix = f"dmobs_test_{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(client, prefix)
    client.close()
