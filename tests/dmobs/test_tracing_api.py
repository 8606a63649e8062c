"""dmobs.observability.tracing's API for the platform's other hops: ids for other writers,
the job helpers (in process, and across two processes through a real Redis
list with an OTLP receiver decoding the spans), writer batch links."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from dmobs.audit.writer import write_batch
from dmobs.observability import tracing
from tests.live_helpers import ROOT, OtlpReceiver, child_env


def test_current_ids_are_the_current_spans(tracer):
    assert tracing.current_trace_id() is None and tracing.current_span_id() is None
    with tracer.start_as_current_span("work") as span:
        ctx = span.get_span_context()
        assert tracing.current_trace_id() == format(ctx.trace_id, "032x")
        assert tracing.current_span_id() == format(ctx.span_id, "016x")


def test_a_job_continues_the_trace_of_the_code_that_enqueued_it(tracer, span_exporter):
    with tracer.start_as_current_span("request") as request_span:
        payload = {"job": "sync", "trace": tracing.inject_job_context(queue="sync", system="redis")}
    carrier = json.loads(json.dumps(payload))["trace"]  # through a queue: plain JSON
    assert carrier["traceparent"].startswith(
        f"00-{format(request_span.get_span_context().trace_id, '032x')}-"
    )

    with tracing.job_span(carrier, queue="sync", system="redis") as job:
        job_trace = tracing.current_trace_id()
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    send, process = spans["send sync"], spans["process sync"]
    assert send.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert send.parent.span_id == request_span.get_span_context().span_id
    assert process.parent.span_id == send.context.span_id
    assert job_trace == format(request_span.get_span_context().trace_id, "032x")
    assert process.attributes["messaging.destination.name"] == "sync"
    assert process.attributes["messaging.system"] == "redis"
    assert job is not None


def test_a_job_without_context_starts_its_own_trace_and_records_its_failure(span_exporter):
    with pytest.raises(ValueError), tracing.job_span({}, queue="q"):
        raise ValueError("job failed")
    (span,) = [s for s in span_exporter.get_finished_spans() if s.name == "process q"]
    assert span.parent is None
    assert not span.status.is_ok
    assert [e.name for e in span.events] == ["exception"]


class _Store:
    def __init__(self):
        self.seen = None

    def write(self, entries):
        self.seen = trace.get_current_span()
        return len(entries)


def test_writer_batch_span_links_each_request_span_once(tracer, span_exporter):
    entries = []
    request_contexts = []
    for _ in range(3):
        with tracer.start_as_current_span("request") as span:
            ctx = span.get_span_context()
            request_contexts.append(ctx)
            for _ in range(2):  # two entries from one request: one link
                entries.append(
                    {
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                    }
                )
    entries.append({"trace_id": "ab" * 16, "span_id": None})  # replayed: no span to link
    store = _Store()
    assert write_batch(store, entries) == 7
    (batch,) = [s for s in span_exporter.get_finished_spans() if s.name == "audit.write_batch"]
    assert store.seen.get_span_context().span_id == batch.context.span_id  # the write ran inside
    assert [(link.context.trace_id, link.context.span_id) for link in batch.links] == [
        (c.trace_id, c.span_id) for c in request_contexts
    ]
    assert batch.parent is None
    assert batch.attributes["audit.batch.entries"] == 7


# --- across processes, through a real queue ---------------------------------------------

ENQUEUE = textwrap.dedent(
    """
    import json, sys, redis
    from dmobs.observability.tracing import configure_tracing, inject_job_context
    provider = configure_tracing()
    from opentelemetry import trace
    queue = sys.argv[1]
    with trace.get_tracer("enqueuer").start_as_current_span("POST /activities") as span:
        job = {"kind": "sync-semrush", "tenant": "t-acme"}
        job["trace"] = inject_job_context(queue=queue, system="redis")
        redis.Redis(host="127.0.0.1", port=6379).lpush(queue, json.dumps(job))
        ids = {"trace_id": format(span.get_span_context().trace_id, "032x"),
               "span_id": format(span.get_span_context().span_id, "016x")}
    provider.force_flush()
    print(json.dumps(ids))
    """
)

RUN = textwrap.dedent(
    """
    import json, sys, redis, django
    django.setup()  # a worker runs under Django (a management command): logging configured
    from dmobs.observability.tracing import configure_tracing, current_trace_id, job_span
    from dmobs.observability.logger import get_logger
    provider = configure_tracing()
    queue = sys.argv[1]
    _, raw = redis.Redis(host="127.0.0.1", port=6379).brpop(queue, timeout=30)
    job = json.loads(raw)
    with job_span(job["trace"], queue=queue, system="redis"):
        get_logger("worker").warning("job ran", kind=job["kind"])
        trace_id = current_trace_id()
    provider.force_flush()
    print(json.dumps({"trace_id": trace_id}))
    """
)


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_a_job_enqueued_in_one_process_and_run_in_another_is_one_trace():
    import redis

    otlp = OtlpReceiver()
    queue = f"dmobs_i14_jobs_{uuid.uuid4().hex}"
    env = child_env(
        DJANGO_SETTINGS_MODULE="tests.settings",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
        OTEL_SERVICE_NAME="dmobs-jobs",
    )
    try:
        worker = subprocess.Popen(
            [sys.executable, "-c", RUN, queue],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        enqueued = subprocess.run(
            [sys.executable, "-c", ENQUEUE, queue],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert enqueued.returncode == 0, enqueued.stderr
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        request = json.loads(enqueued.stdout.strip().splitlines()[-1])
        ran = json.loads(out.strip().splitlines()[-1])
        assert ran["trace_id"] == request["trace_id"]
        # The worker's log line carries the trace of the request that enqueued the job.
        (line,) = [json.loads(x) for x in out.splitlines() if '"job ran"' in x]
        assert line["traceId"] == request["trace_id"]

        spans = otlp.wait_for(
            lambda s: {"send " + queue, "process " + queue} <= {x.name for x in s}
        )
        by_name = {s.name: s for s in spans}
        send, process = by_name["send " + queue], by_name["process " + queue]
        assert send.kind == "PRODUCER" and process.kind == "CONSUMER"
        assert send.trace_id == process.trace_id == request["trace_id"]
        assert send.parent_id == request["span_id"]
        assert process.parent_id == send.span_id
        assert process.attributes["messaging.destination.name"] == queue
        assert process.attributes["messaging.operation.type"] == "process"
    finally:
        redis.Redis(host="127.0.0.1", port=6379).delete(queue)
        otlp.close()
