"""The background writer against the real database: batching, flush, failures,
spool and replay. These use committed transactions because the writer thread
has a connection of its own."""

from __future__ import annotations

import io
import json
import threading

import pytest
from django.db import connection

from dmobs.audit import audit_log
from dmobs.audit.api import build_entry
from dmobs.audit.spool import Spool
from dmobs.audit.stores.sql import DjangoStore
from dmobs.audit.writer import AuditWriter, set_writer
from dmobs.models import AuditLog
from dmobs.records import model_values

pytestmark = pytest.mark.django_db(transaction=True)


def entry(i: int = 0, **overrides):
    kwargs = dict(
        tenant_id="t-writer",
        actor_type="agent",
        actor_id="agent-7",
        actor_name="Planner agent",
        action="completed",
        resource_type="activity",
        resource_id=f"act-{i}",
        description=f"Planner agent completed activity {i}",
        after={"n": i},
        trace_id="ab" * 16,
    )
    kwargs.update(overrides)
    return build_entry(**kwargs)


class RecordingStore(DjangoStore):
    """The real store, remembering the size of each batch it wrote."""

    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def write(self, entries):
        self.batches.append(len(entries))
        return super().write(entries)


class FlakyStore(DjangoStore):
    """The real store behind a switch: fails the first ``failures`` writes."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures
        self.attempts = 0
        self.lock = threading.Lock()

    def write(self, entries):
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.failures:
                raise ConnectionError("audit store unreachable (injected)")
        return super().write(entries)


def make_writer(store, tmp_path, **kwargs) -> AuditWriter:
    options = dict(batch_size=100, flush_interval=0.05, retry_initial=0.05, retry_max=0.2)
    options.update(kwargs)
    return AuditWriter(store=store, spool=Spool(tmp_path / "spool"), **options)


def test_batches_are_bounded_by_size(tmp_path):
    store = RecordingStore()
    writer = make_writer(store, tmp_path, batch_size=100, flush_interval=1.0)
    for i in range(1000):
        writer.submit(entry(i))
    assert writer.flush(timeout=10)
    assert AuditLog.objects.filter(tenant_id="t-writer").count() == 1000
    assert max(store.batches) <= 100
    assert len(store.batches) >= 10
    writer.close()


def test_batches_are_bounded_by_time(tmp_path):
    store = RecordingStore()
    writer = make_writer(store, tmp_path, batch_size=10_000, flush_interval=0.05)
    writer.submit(entry(1))
    # No flush(): the time bound alone must write it.
    for _ in range(100):
        if AuditLog.objects.filter(tenant_id="t-writer").exists():
            break
        threading.Event().wait(0.02)
    assert AuditLog.objects.filter(tenant_id="t-writer").count() == 1
    writer.close()


def test_flush_drains_every_entry_audit_log_accepted(tmp_path):
    writer = make_writer(RecordingStore(), tmp_path, flush_interval=0.5)
    set_writer(writer)
    ids = [
        audit_log(**{k: v for k, v in entry(i).items() if k not in ("id", "created_at")})
        for i in range(50)
    ]
    assert writer.flush(timeout=10)
    assert set(AuditLog.objects.values_list("id", flat=True)) == set(ids)


ON_POSTGRESQL = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="parallel batches are for PostgreSQL only"
)


@pytest.mark.parametrize("connections", [1, pytest.param(2, marks=ON_POSTGRESQL)])
def test_store_failing_then_recovering_stores_everything_once(tmp_path, connections):
    store = FlakyStore(failures=3)
    writer = make_writer(store, tmp_path, batch_size=50, connections=connections)
    expected = []
    for i in range(500):
        e = entry(i)
        expected.append(e["id"])
        writer.submit(e)
    assert writer.flush(timeout=10)
    # Entries of failed batches went to the spool; the writer replays them
    # once the store answers again (its retry backoff is short here).
    for _ in range(200):
        if not writer.spool.pending_files() and AuditLog.objects.count() == 500:
            break
        threading.Event().wait(0.05)
    stored = list(AuditLog.objects.values_list("id", flat=True))
    assert sorted(stored) == sorted(expected)
    assert store.attempts > 3
    assert not writer.spool.pending_files()
    writer.close()


def test_full_queue_spills_to_spool_instead_of_dropping(tmp_path):
    store = FlakyStore(failures=10**9)  # never answers
    writer = make_writer(store, tmp_path, queue_size=10)
    for i in range(200):
        writer.submit(entry(i))
    writer.close(timeout=5)
    lines = [
        json.loads(line)
        for path in writer.spool.pending_files()
        for line in path.read_text().splitlines()
    ]
    assert sorted(r["resourceId"] for r in lines) == sorted(f"act-{i}" for i in range(200))


def test_spool_replay_twice_inserts_once(tmp_path):
    spool = Spool(tmp_path / "spool")
    entries = [entry(i) for i in range(300)]
    spool.append(entries)
    # A copy of the same spool replayed again after the first replay, as when a
    # replay is interrupted after the insert but before the file is removed.
    copy = tmp_path / "spool" / "copy.ndjson"
    copy.write_bytes(spool.pending_files()[0].read_bytes())
    report = spool.replay(DjangoStore().write)
    assert report.replayed == 600
    assert AuditLog.objects.count() == 300
    spool.append(entries[:10])
    assert spool.replay(DjangoStore().write).replayed == 10
    assert AuditLog.objects.count() == 300
    assert spool.pending_files() == []


def test_torn_last_line_is_quarantined_and_the_rest_replayed(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append([entry(i) for i in range(20)])
    path = spool.pending_files()[0]
    with open(path, "ab") as f:
        f.write(b'{"id":"65a1b2c3d4e5f6a7b8c9d0e1","tenantId":"t-wr')  # torn, no newline
    report = spool.replay(DjangoStore().write)
    assert report.replayed == 20
    assert report.torn_lines == 1
    assert AuditLog.objects.count() == 20
    (torn,) = report.torn_files
    with open(torn, "rb") as quarantined:
        assert b'"tenantId":"t-wr' in quarantined.read()


def test_audit_replay_command(tmp_path, settings):
    from django.core.management import call_command

    settings.AUDIT_SPOOL_DIR = tmp_path / "spool"
    Spool(settings.AUDIT_SPOOL_DIR).append([entry(i) for i in range(5)])
    call_command("audit_replay")
    call_command("audit_replay")
    assert AuditLog.objects.count() == 5


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"quote": 'say "hi"', "slash": "a\\b", "nl": "x\ny\tz"}, {"unicode": "Zoë ✓ 🚀"}),
        ("just text", 42),
        ([1, 2.5, None, True], {"nested": {"list": [{"k": "v"}], "empty": {}}}),
        (None, {"literal": "\\u0000 is text here"}),
    ],
)
def test_store_round_trips_every_kind_of_value(before, after):
    """The PostgreSQL store sends a batch as one JSON document: every value and
    the exact time must come back as they were given."""
    entries = [
        entry(0, before=before, after=after, description='Quote " backslash \\ tab \t é'),
        entry(1, tenant_id=None, resource_name="Zoë's plan"),
    ]
    assert DjangoStore().write(entries) == 2
    for given in entries:
        stored = AuditLog.objects.get(pk=given["id"])
        for name, value in model_values(given).items():
            assert getattr(stored, name) == value, name
    assert AuditLog.objects.get(pk=entries[0]["id"]).before == before


class SlowStore(DjangoStore):
    """The real store, slowed down, counting how many writes run at once."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def write(self, entries):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            threading.Event().wait(self.delay)
            return super().write(entries)
        finally:
            with self.lock:
                self.running -= 1


@ON_POSTGRESQL
def test_two_connections_write_two_batches_at_once_and_flush_waits_for_both(tmp_path):
    store = SlowStore(delay=0.2)
    writer = make_writer(store, tmp_path, batch_size=100, connections=2)
    for i in range(600):
        writer.submit(entry(i))
    assert writer.flush(timeout=10)
    # flush() returned: every batch in flight has been settled.
    assert AuditLog.objects.filter(tenant_id="t-writer").count() == 600
    assert store.most == 2
    assert len(store.threads) == 2 and all(n.startswith("dmobs-audit-store") for n in store.threads)
    writer.close()


@ON_POSTGRESQL
def test_close_closes_the_connections_of_the_write_threads(tmp_path, pg_connections):
    before = pg_connections()
    writer = make_writer(SlowStore(delay=0.05), tmp_path, batch_size=10, connections=2)
    for i in range(100):
        writer.submit(entry(i))
    assert writer.flush(timeout=10)
    assert pg_connections() >= before + 2  # the writer thread's and the write threads'
    writer.close()
    assert pg_connections.settle_at(before) == before
    assert not [t for t in threading.enumerate() if t.name.startswith("dmobs-audit")]


def test_batches_go_in_parallel_on_postgresql_only(settings):
    from dmobs.audit.writer import build_writer

    settings.AUDIT_WRITER_CONNECTIONS = 3
    expected = 3 if connection.vendor == "postgresql" else 1
    assert build_writer().connections == expected


def refused_entry(i: int) -> dict:
    """An entry audit_log() would never accept (it validates), as an older
    version or a hand-edited spool file could hold: the store refuses it."""
    bad = entry(i)
    bad["description"] = None  # NOT NULL in every store
    return bad


def rejected_lines(spool: Spool) -> list[dict]:
    return [
        json.loads(line)
        for path in spool.directory.glob("*.rejected")
        for line in path.read_text().splitlines()
    ]


def test_replay_sets_a_refused_entry_apart_and_stores_the_rest(tmp_path):
    spool = Spool(tmp_path / "spool")
    good = [entry(i) for i in range(9)]
    spool.append(good[:4] + [refused_entry(99)] + good[4:])
    report = spool.replay(DjangoStore().write, batch_size=5, refuses=DjangoStore.refuses)
    assert report.replayed == 9 and report.rejected == 1
    assert set(AuditLog.objects.values_list("id", flat=True)) == {e["id"] for e in good}
    (line,) = rejected_lines(spool)
    assert line["record"]["resourceId"] == "act-99" and line["error"]
    assert spool.pending_files() == []
    assert spool.replay(DjangoStore().write, refuses=DjangoStore.refuses).replayed == 0


def test_replay_with_the_store_down_keeps_the_file_whole(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append([entry(1), refused_entry(2)])
    store = FlakyStore(failures=10**9)  # unreachable: not a refusal
    with pytest.raises(ConnectionError):
        spool.replay(store.write, refuses=DjangoStore.refuses)
    assert len(spool.pending_files()) == 1 and rejected_lines(spool) == []
    assert AuditLog.objects.count() == 0


@pytest.mark.parametrize("connections", [1, pytest.param(2, marks=ON_POSTGRESQL)])
def test_a_refused_entry_in_a_live_batch_costs_only_itself(tmp_path, connections):
    writer = make_writer(RecordingStore(), tmp_path, batch_size=100, connections=connections)
    good = [entry(i) for i in range(50)]
    for e in good[:25] + [refused_entry(99)] + good[25:]:
        writer.submit(e)
    assert writer.flush(timeout=10)
    assert set(AuditLog.objects.values_list("id", flat=True)) == {e["id"] for e in good}
    assert [line["record"]["resourceId"] for line in rejected_lines(writer.spool)] == ["act-99"]
    assert not writer._store_down  # the store answered: no backoff for what follows
    later = entry(200)
    writer.submit(later)
    assert writer.flush(timeout=10)
    assert AuditLog.objects.filter(pk=later["id"]).exists()
    assert writer.spool.pending_files() == []
    writer.close()


def test_audit_replay_command_reports_refused_entries(tmp_path, settings):
    from django.core.management import call_command

    settings.AUDIT_SPOOL_DIR = tmp_path / "spool"
    Spool(settings.AUDIT_SPOOL_DIR).append([entry(1), refused_entry(2)])
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_replay", stdout=out, stderr=err)
    assert "Replayed 1 entries" in out.getvalue()
    assert "1 entry refused by the audit store" in err.getvalue()
    assert ".rejected" in err.getvalue()
    assert AuditLog.objects.count() == 1


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        ("document", True),
        ("write error", True),
        ("write concern", False),
        ("unreachable", False),
    ],
)
def test_mongodb_store_tells_a_refusal_from_an_unreachable_server(error, refused):
    from bson.errors import InvalidDocument
    from pymongo.errors import AutoReconnect, BulkWriteError

    from dmobs.audit.stores.mongo import MongoStore

    exc = {
        "document": InvalidDocument("key '$x' must not start with '$'"),
        "write error": BulkWriteError({"writeErrors": [{"code": 2, "errmsg": "bad value"}]}),
        "write concern": BulkWriteError(
            {"writeErrors": [{"code": 2}], "writeConcernErrors": [{"code": 64}]}
        ),
        "unreachable": AutoReconnect("connection refused"),
    }[error]
    assert MongoStore.refuses(exc) is refused


def test_rejected_entries_go_back_in_line_once_the_cause_is_fixed(tmp_path, settings):
    from django.core.management import call_command

    settings.AUDIT_SPOOL_DIR = tmp_path / "spool"
    spool = Spool(settings.AUDIT_SPOOL_DIR)
    spool.append([entry(1), refused_entry(2)])
    spool.close()  # as a process that exited: its segment is no longer held
    call_command("audit_replay", stdout=io.StringIO(), stderr=io.StringIO())
    (rejected,) = spool.directory.glob("*.rejected")
    # A person fixes the entry in the quarantine file, then retries it.
    line = json.loads(rejected.read_text())
    line["record"]["description"] = "Planner agent completed activity 2 (restored)"
    rejected.write_text(json.dumps(line) + "\n" + '{"record": {"id": "cut sh\n')
    out = io.StringIO()
    call_command("audit_replay", "--retry-rejected", stdout=out, stderr=io.StringIO())
    assert "Put 1 rejected entries back in line" in out.getvalue()
    assert AuditLog.objects.get(resource_id="act-2").description.endswith("(restored)")
    assert AuditLog.objects.count() == 2
    assert spool.pending_files() == []
    # What could not be read stays where a person can see it, and only that.
    assert rejected.read_text() == '{"record": {"id": "cut sh\n'


def test_entries_keep_states_as_json_text_and_the_spool_as_json_values(tmp_path):
    """In the queue an entry's before/after are JSON text (nothing there for the
    garbage collector to track); a spool line carries them as JSON values, the
    record format other tools read, and replay brings back the same text."""
    import gc

    given = entry(1, before={"status": "draft", "tags": ["a"]}, after="just text")
    assert given["before"] == '{"status": "draft", "tags": ["a"]}'
    assert not gc.is_tracked(given)
    spool = Spool(tmp_path / "spool")
    spool.append([given])
    spool.close()
    (path,) = spool.pending_files()
    record = json.loads(path.read_text())
    assert record["before"] == {"status": "draft", "tags": ["a"]}
    assert record["after"] == "just text"
    spool.replay(DjangoStore().write)
    stored = AuditLog.objects.get(pk=given["id"])
    assert stored.before == {"status": "draft", "tags": ["a"]} and stored.after == "just text"


def test_a_write_stuck_on_a_dead_connection_does_not_hang_exit(tmp_path):
    """Write threads are daemons like the writer thread: a process whose store
    hangs still exits, and close() spools the batches the threads hold."""
    import subprocess
    import sys
    from pathlib import Path

    spool_dir = tmp_path / "spool"
    script = f"""
import os, sys, threading
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
from dmobs.audit.api import build_entry
from dmobs.audit.spool import Spool
from dmobs.audit.stores.sql import DjangoStore
from dmobs.audit.writer import AuditWriter

class Hung(DjangoStore):
    def write(self, entries):
        threading.Event().wait()  # a connection that never answers

writer = AuditWriter(store=Hung(), spool=Spool({str(spool_dir)!r}), batch_size=10, connections=2)
for i in range(50):
    writer.submit(build_entry(tenant_id="t", actor_type="agent", actor_id="a", actor_name="A",
        action="completed", resource_type="activity", resource_id=str(i), description="d"))
writer.close(timeout=1)
print("closed")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr[-2000:]
    spooled = {
        json.loads(line)["resourceId"]
        for path in Spool(spool_dir).pending_files()
        for line in path.read_text().splitlines()
    }
    assert spooled == {str(i) for i in range(50)}
