"""dmobs.observability.metrics and /metrics: access, write-path and activity metrics,
the spool read at scrape time, and gunicorn's multiprocess mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dmobs.audit import audit_log
from dmobs.audit.spool import Spool, SpoolCollector
from dmobs.audit.writer import AuditWriter
from dmobs.observability import metrics
from tests.obs_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parse(text: str) -> dict[tuple[str, tuple], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


def entry_kwargs(**overrides):
    kwargs = dict(
        tenant_id="t-acme",
        actor_type="agent",
        actor_id="agent-7",
        actor_name="Planner",
        action="auto_activated",
        resource_type="activity",
        resource_id="act-1",
        description="The planner activated an activity",
    )
    kwargs.update(overrides)
    return kwargs


# --- access ---------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_from_localhost_lists_request_and_write_path_metrics(client):
    client.get("/healthz")
    # Earlier tests may leave a streamed response unread (the test client closes
    # it only when its body is read): count from what is in flight now.
    before = REGISTRY.get_sample_value("dmobs_http_requests_in_flight") or 0
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = parse(response.content.decode())
    names = {name for name, _ in values}
    for name in (
        "dmobs_http_responses_total",
        "dmobs_http_request_duration_seconds_bucket",
        "dmobs_audit_entries_accepted_total",
        "dmobs_audit_entries_written_total",
        "dmobs_audit_entries_spooled_total",
        "dmobs_audit_entries_replayed_total",
        "dmobs_audit_queue_depth",
        "dmobs_audit_spool_pending_files",
        "dmobs_http_requests_in_flight",
    ):
        assert name in names, name
    key = (
        "dmobs_http_responses_total",
        (("method", "GET"), ("route", "healthz"), ("status", "200")),
    )
    assert values[key] >= 1
    # The scrape itself is a request in flight.
    assert values[("dmobs_http_requests_in_flight", ())] == before + 1


@pytest.mark.parametrize(
    ("remote", "authorization", "allowed"),
    [
        ("127.0.0.1", None, True),
        ("::1", None, True),
        ("::ffff:127.0.0.1", None, True),
        ("10.1.2.3", None, False),
        ("10.1.2.3", "Bearer right-token", True),
        ("10.1.2.3", "Bearer wrong-token", False),
        ("10.1.2.3", "Basic right-token", False),
        ("172.20.0.9", None, True),  # inside an allowed network
    ],
)
@pytest.mark.django_db
def test_metrics_access(client, settings, remote, authorization, allowed):
    import ipaddress

    settings.DMOBS_METRICS_TOKEN = "right-token"
    settings.DMOBS_METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(n) for n in ("127.0.0.1", "::1", "172.16.0.0/12")
    ]
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", REMOTE_ADDR=remote, **headers)
    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert b"dmobs_audit" not in response.content


@pytest.mark.django_db
def test_forwarded_headers_do_not_open_metrics(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403


# --- activity ---------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_log_counts_activity_by_kind_and_tenant():
    labels = dict(actor_type="agent", action="auto_activated", resource_type="activity")
    before = sample("dmobs_audit_activity_total", **labels)
    before_tenant = sample("dmobs_audit_activity_by_tenant_total", tenant="t-acme")
    before_platform = sample("dmobs_audit_activity_by_tenant_total", tenant="platform")
    before_accepted = sample("dmobs_audit_entries_accepted_total")

    audit_log(**entry_kwargs())
    audit_log(**entry_kwargs(tenant_id=None))

    assert sample("dmobs_audit_activity_total", **labels) == before + 2
    assert sample("dmobs_audit_activity_by_tenant_total", tenant="t-acme") == before_tenant + 1
    assert sample("dmobs_audit_activity_by_tenant_total", tenant="platform") == before_platform + 1
    assert sample("dmobs_audit_entries_accepted_total") == before_accepted + 2


@pytest.mark.django_db
def test_unknown_vocabulary_and_tenants_over_the_cap_count_as_other(settings, monkeypatch):
    monkeypatch.setattr(metrics, "_tenants_seen", set())
    monkeypatch.setattr(metrics, "_ACTIVITY_CHILDREN", {})  # labels resolved afresh
    settings.DMOBS_METRICS_MAX_TENANTS = 2
    other_kind = dict(actor_type="human", action="other", resource_type="other")
    before = sample("dmobs_audit_activity_total", **other_kind)
    before_other = sample("dmobs_audit_activity_by_tenant_total", tenant="other")

    audit_log(**entry_kwargs(actor_type="human", action="frobnicated", resource_type="widget"))
    for tenant in ("t-1", "t-2", "t-3", "t-4"):
        audit_log(**entry_kwargs(tenant_id=tenant))

    assert sample("dmobs_audit_activity_total", **other_kind) == before + 1
    # t-acme (first entry) and t-1 fill the cap; t-2..t-4 are "other".
    assert sample("dmobs_audit_activity_by_tenant_total", tenant="other") == before_other + 3


def test_record_export_counts_exports_and_rows():
    before = sample("dmobs_audit_exports_total", app="portal", format="csv")
    rows = sample("dmobs_audit_export_rows_total", app="portal", format="csv")
    metrics.record_export(app="portal", format="csv", rows=120)
    assert sample("dmobs_audit_exports_total", app="portal", format="csv") == before + 1
    assert sample("dmobs_audit_export_rows_total", app="portal", format="csv") == rows + 120


# --- spool and queue ------------------------------------------------------------------


def test_spool_gauges_are_read_from_disk_at_scrape_time(tmp_path):
    spool_dir = tmp_path / "spool"
    collector = SpoolCollector(spool_dir)

    def gauges():
        return {f.name: f.samples[0].value for f in collector.collect()}

    assert gauges()["dmobs_audit_spool_pending_files"] == 0
    spool = Spool(spool_dir)
    from dmobs.audit.api import build_entry

    spool.append([build_entry(**entry_kwargs(), trace_id="ab" * 16)])
    spool.close()
    values = gauges()
    assert values["dmobs_audit_spool_pending_files"] == 1
    assert values["dmobs_audit_spool_pending_bytes"] > 0
    assert values["dmobs_audit_spool_oldest_age_seconds"] >= 0

    spool.replay(lambda entries: len(entries))
    assert gauges()["dmobs_audit_spool_pending_files"] == 0


class _SlowStore:
    def __init__(self):
        self.release = threading.Event()
        self.written = 0

    def write(self, entries):
        self.release.wait(10)
        self.written += len(entries)
        return len(entries)

    def close(self):
        pass


def test_writer_thread_reports_its_queue_depth(tmp_path):
    from dmobs.audit.api import build_entry

    store = _SlowStore()
    writer = AuditWriter(
        store=store, spool=Spool(tmp_path / "spool"), batch_size=5, flush_interval=0.01
    )
    try:
        for i in range(30):
            writer.submit(build_entry(**entry_kwargs(resource_id=f"r{i}"), trace_id="cd" * 16))
        deadline = time.monotonic() + 5
        while sample("dmobs_audit_queue_depth") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sample("dmobs_audit_queue_depth") >= 20  # first batch taken, rest waiting
        store.release.set()
        assert writer.flush(timeout=10)
        deadline = time.monotonic() + 5
        while sample("dmobs_audit_queue_depth") != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sample("dmobs_audit_queue_depth") == 0
        assert store.written == 30
    finally:
        store.release.set()
        writer.close(timeout=5)


# --- gunicorn: several workers, one /metrics --------------------------------------------


def _get(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not come up")


def test_gunicorn_workers_share_one_metrics_view(tmp_path):
    """Real gunicorn, 2 workers, PROMETHEUS_MULTIPROC_DIR: /metrics adds up all
    workers, and a killed worker's counts stay while its live gauges go."""
    port = free_port()
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale file from an earlier run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_FILE=str(tmp_path / "app.log"),
        AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "dmobs/gunicorn.conf.py", "dmobs.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def healthz_count() -> tuple[float, float]:
        status, text = _get(f"{base}/metrics")
        assert status == 200
        values = parse(text)
        key = (
            "dmobs_http_responses_total",
            (("method", "GET"), ("route", "healthz"), ("status", "200")),
        )
        return values.get(key, 0), values[("dmobs_http_requests_in_flight", ())]

    def pids_with(prefix: str) -> set[int]:
        return {int(p.name[len(prefix) : -3]) for p in multiproc.glob(f"{prefix}*.db")}

    try:
        _wait_until_up(f"{base}/healthz", proc)
        assert not (multiproc / "counter_999999.db").exists()  # emptied at start
        for _ in range(14):
            assert _get(f"{base}/healthz")[0] == 200
        assert healthz_count() == (15, 1)

        # Kill every worker that has answered so far (which ones the kernel
        # picked is up to it). Their counts must stay; their live gauges go.
        served = pids_with("counter_")
        assert served and proc.pid not in served
        for pid in served:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while pids_with("gauge_livesum_") & served and time.monotonic() < deadline:
            time.sleep(0.1)  # gunicorn notices, calls child_exit, forks new workers
        assert not pids_with("gauge_livesum_") & served

        _wait_until_up(f"{base}/healthz", proc)
        for _ in range(14):
            assert _get(f"{base}/healthz")[0] == 200
        count, in_flight = healthz_count()
        # Requests of dead and of live workers, added up; only this scrape in flight.
        assert count == 30
        assert in_flight == 1
        assert pids_with("counter_") - served, "new workers answered too"
        lines = [json.loads(line) for line in (tmp_path / "app.log").read_text().splitlines()]
        assert any(line.get("logger") == "gunicorn.error" for line in lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
