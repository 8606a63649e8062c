"""Faults in the write path: nothing accepted by audit_log() goes missing, nothing
is stored twice.

The PostgreSQL cases run the real writer in a subprocess (``tests/faultproc.py``)
against a database of their own, created and migrated for this module and
dropped afterwards. The path to it goes through ``tests/tcpproxy.py`` so the
test can cut the connection while PostgreSQL keeps running. Every id that
``audit_log()`` returned is on record in a file the subprocess appends to, and
each test compares id sets: what the caller was promised against what the store
(and, before replay, the spool) holds.

The spool cases (torn line, spool not writable, disk full) need no PostgreSQL
and run on every database.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from prometheus_client import REGISTRY

from dmobs.audit import audit_log
from dmobs.audit.api import build_entry
from dmobs.audit.spool import Spool
from dmobs.audit.stores.sql import DjangoStore
from dmobs.audit.writer import AuditWriter, set_writer
from dmobs.models import AuditLog
from tests.tcpproxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="fault tests against the audit store need PostgreSQL: set DATABASE_URL=postgres://...",
)


# --- a database of our own for the subprocesses ---------------------------------


@dataclass
class FaultDb:
    url: str
    host: str
    port: int
    name: str

    def url_via(self, port: int) -> str:
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)
        userinfo = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))

    def connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def ids(self, tenant: str) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute('SELECT id FROM audit_logs WHERE "tenantId" = %s', [tenant])
            return [row[0] for row in rows]


@pytest.fixture(scope="module")
def fault_db() -> Iterator[FaultDb]:
    if not ON_POSTGRES:
        pytest.skip("fault tests against the audit store need PostgreSQL")
    import psycopg

    parts = urlsplit(DATABASE_URL)
    base = parts.path.lstrip("/") or "dmobs"
    name = f"{base}_fault_{secrets.token_hex(4)}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = FaultDb(
        url=urlunsplit(parts._replace(path=f"/{name}")),
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        name=name,
    )
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=_env(DATABASE_URL=db.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        yield db
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUDIT_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(ROOT),
        AUDIT_WRITER_MODE="thread",
        AUDIT_FLUSH_INTERVAL="0.05",
        AUDIT_RETRY_MAX_SECONDS="1",
        LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


class Burst:
    """A running ``tests.faultproc burst`` subprocess and its progress."""

    def __init__(self, *, args: list[str], env: dict[str, str]):
        self.lines: list[str] = []
        self.accepted = 0
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faultproc", "burst", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("accepted "):
                    self.accepted = int(line.split()[1])
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    def wait_accepted(self, n: int, timeout: float = 60) -> None:
        with self._changed:
            assert self._changed.wait_for(
                lambda: self.accepted >= n or self.proc.poll() is not None, timeout
            ), f"burst did not reach {n} accepted entries"
        assert self.accepted >= n, f"burst ended early:\n{self.output()}"

    def wait(self, timeout: float = 180) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0.1)  # let the reader threads drain the pipes
        return code

    def output(self) -> str:
        return "\n".join(self.lines[-30:]) + "\n--- stderr ---\n" + "".join(self._stderr[-40:])

    def has_line(self, prefix: str) -> bool:
        return any(line.startswith(prefix) for line in self.lines)


def _read_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().split("\n") if len(line) == 24]


def _spooled_ids(directory: Path) -> list[str]:
    ids = []
    for path in sorted(directory.glob("*.ndjson")):
        for raw in path.read_bytes().split(b"\n"):
            if raw.strip():
                ids.append(json.loads(raw)["id"])
    return ids


def _replay(db: FaultDb, spool_dir: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "manage.py", "audit_replay"],
        cwd=ROOT,
        env=_env(DATABASE_URL=db.url, AUDIT_SPOOL_DIR=str(spool_dir)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _assert_exactly_once(stored: list[str], returned: list[str], *, in_flight: int) -> None:
    """Every returned id is stored, once; at most ``in_flight`` more (ids whose
    audit_log() call was cut short by a signal before the id was written down)."""
    assert len(stored) == len(set(stored)), "an entry was stored twice"
    assert len(returned) == len(set(returned)), "an id was handed out twice"
    missing = set(returned) - set(stored)
    assert not missing, f"{len(missing)} accepted entries are missing, e.g. {sorted(missing)[:3]}"
    assert len(set(stored) - set(returned)) <= in_flight


# --- PostgreSQL through a proxy ----------------------------------------------------


@needs_postgres
@pytest.mark.postgres
def test_store_cut_during_a_burst_of_100k_stores_every_entry_once(fault_db, tmp_path):
    tenant = f"fault-cut-{secrets.token_hex(3)}"
    ids_file = tmp_path / "ids.txt"
    spool_dir = tmp_path / "spool"
    with TcpProxy(fault_db.host, fault_db.port) as proxy:
        burst = Burst(
            args=[
                *("--count", "100000", "--tenant", tenant, "--ids-file", str(ids_file)),
                *("--rate", "16000", "--settle", "--metrics"),
            ],
            env=_env(
                DATABASE_URL=fault_db.url,
                AUDIT_DATABASE_URL=fault_db.url_via(proxy.port),
                AUDIT_SPOOL_DIR=str(spool_dir),
            ),
        )
        burst.wait_accepted(15_000)
        proxy.cut()
        cut_at = burst.accepted
        time.sleep(4)  # several seconds without the store, mid-burst
        restored_at = burst.accepted
        proxy.restore()
        code = burst.wait()
    assert code == 0, burst.output()
    assert restored_at < 100_000, "the burst ended before the store came back"
    assert burst.has_line("settled"), burst.output()
    (metrics_line,) = [line for line in burst.lines if line.startswith("metrics ")]
    metrics = json.loads(metrics_line.split(" ", 1)[1])
    # The cut was felt: writes failed and entries went through the spool.
    assert metrics["store_errors"] >= 1, metrics
    assert metrics["spooled"] > 0 and metrics["replayed"] > 0, metrics
    assert not metrics["spool_errors"], metrics
    returned = _read_ids(ids_file)
    assert len(returned) == 100_000
    _assert_exactly_once(fault_db.ids(tenant), returned, in_flight=0)
    assert not list(spool_dir.glob("*.ndjson"))
    print(f"cut after {cut_at}, restored after {restored_at} accepted; {metrics}")


@needs_postgres
@pytest.mark.postgres
def test_sigterm_mid_burst_then_replay_stores_everything_once(fault_db, tmp_path):
    tenant = f"fault-term-{secrets.token_hex(3)}"
    ids_file = tmp_path / "ids.txt"
    spool_dir = tmp_path / "spool"
    burst = Burst(
        args=["--count", "100000", "--tenant", tenant, "--ids-file", str(ids_file)],
        env=_env(
            DATABASE_URL=fault_db.url,
            AUDIT_SPOOL_DIR=str(spool_dir),
            # Exit must not wait for the whole backlog: what is left is spooled.
            AUDIT_EXIT_FLUSH_TIMEOUT="0.3",
            # Small batches on one connection keep the writer behind the burst,
            # so there is a backlog to spool (the default writer can catch up).
            AUDIT_BATCH_SIZE="50",
            AUDIT_WRITER_CONNECTIONS="1",
        ),
    )
    burst.wait_accepted(40_000)
    burst.proc.send_signal(signal.SIGTERM)
    code = burst.wait()
    assert code == 128 + signal.SIGTERM, burst.output()
    assert "Traceback" not in "".join(burst._stderr), burst.output()

    returned = _read_ids(ids_file)
    assert 40_000 <= len(returned) < 100_000, "the signal did not land mid-burst"
    stored_before = fault_db.ids(tenant)
    spooled = _spooled_ids(spool_dir)
    assert stored_before and spooled, "expected part stored and part spooled at exit"
    # Accepted = stored or spooled (an entry may be in both: its batch was being
    # written when the process exited; replay then inserts it at most once).
    assert not set(returned) - set(stored_before) - set(spooled)

    report = _replay(fault_db, spool_dir)
    assert "Replayed" in report.stdout
    _assert_exactly_once(fault_db.ids(tenant), returned, in_flight=1)
    assert not list(spool_dir.glob("*.ndjson"))
    # A second replay finds nothing and changes nothing.
    assert "Nothing to replay" in _replay(fault_db, spool_dir).stdout


@needs_postgres
@pytest.mark.postgres
def test_sigkill_with_disk_durability_loses_nothing_that_was_returned(fault_db, tmp_path):
    tenant = f"fault-kill-{secrets.token_hex(3)}"
    ids_file = tmp_path / "ids.txt"
    spool_dir = tmp_path / "spool"
    threads = 8
    burst = Burst(
        args=[
            *("--count", "100000", "--tenant", tenant, "--ids-file", str(ids_file)),
            *("--threads", str(threads)),
        ],
        env=_env(
            DATABASE_URL=fault_db.url, AUDIT_SPOOL_DIR=str(spool_dir), AUDIT_DURABILITY="disk"
        ),
    )
    burst.wait_accepted(20_000)
    started = time.monotonic()
    burst.proc.send_signal(signal.SIGKILL)
    code = burst.wait()
    assert code == -signal.SIGKILL
    returned = _read_ids(ids_file)
    assert len(returned) < 100_000, "the kill did not land mid-burst"
    stored_before = set(fault_db.ids(tenant))
    on_disk = set(_spooled_ids(spool_dir))
    # Everything returned is in the store or in the (fsynced) journal.
    assert not set(returned) - stored_before - on_disk
    assert on_disk - stored_before, "expected entries that only the journal kept"

    _replay(fault_db, spool_dir)
    # A killed thread may have had an entry journaled but not yet returned.
    _assert_exactly_once(fault_db.ids(tenant), returned, in_flight=threads)
    assert not list(spool_dir.glob("*.ndjson"))
    print(
        f"killed after {len(returned)} returned ids; {len(stored_before)} were stored, "
        f"{len(on_disk)} in the journal; replay in {time.monotonic() - started:.1f}s"
    )


# --- the spool itself (any database) ----------------------------------------------


def _entry(i: int, tenant: str = "t-spool") -> dict:
    return build_entry(
        tenant_id=tenant,
        actor_type="system",
        actor_id="sys",
        actor_name="System",
        action="completed",
        resource_type="activity",
        resource_id=f"act-{i}",
        description=f"entry {i}",
    )


@pytest.mark.django_db
def test_torn_last_spool_line_is_reported_and_the_rest_replays(tmp_path, settings):
    settings.AUDIT_SPOOL_DIR = tmp_path / "spool"
    spool = Spool(settings.AUDIT_SPOOL_DIR)
    entries = [_entry(i) for i in range(50)]
    spool.append(entries)
    spool.close()  # the "process" is gone
    (path,) = spool.pending_files()
    # A crash mid-write: the last line stops half-way, without its newline.
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last_start + (len(data) - last_start) // 2])

    torn_before = REGISTRY.get_sample_value("dmobs_audit_spool_torn_lines_total") or 0
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_replay", stdout=out, stderr=err)
    assert "Replayed 49 entries" in out.getvalue()
    assert "1 unreadable line(s) moved to quarantine" in err.getvalue()
    assert REGISTRY.get_sample_value("dmobs_audit_spool_torn_lines_total") == torn_before + 1

    stored = set(AuditLog.objects.filter(tenant_id="t-spool").values_list("id", flat=True))
    assert stored == {e["id"] for e in entries[:49]}
    (torn_file,) = Path(settings.AUDIT_SPOOL_DIR).glob("*.torn")
    assert entries[49]["id"].encode() in torn_file.read_bytes()
    assert not spool.pending_files()


@pytest.mark.django_db(transaction=True)
def test_disk_durability_group_commits_and_empties_the_journal_once_stored(tmp_path):
    writer = AuditWriter(
        store=DjangoStore(), spool=Spool(tmp_path / "spool"), durability="disk", flush_interval=0.02
    )
    set_writer(writer)
    returned: list[str] = []

    def calls(worker: int) -> None:
        for i in range(250):
            kwargs = {k: v for k, v in _entry(i, "t-disk").items() if k not in ("id", "created_at")}
            returned.append(audit_log(**kwargs))

    threads = [threading.Thread(target=calls, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each id was on disk before audit_log() returned, and callers shared flushes.
    assert writer.spool.disk_flushes < len(returned) == 2000
    assert writer.flush(timeout=10)
    stored = list(AuditLog.objects.filter(tenant_id="t-disk").values_list("id", flat=True))
    assert sorted(stored) == sorted(returned)
    # Everything is stored, so the journal holds nothing any more...
    assert all(p.stat().st_size == 0 for p in writer.spool.pending_files())
    writer.close()
    # ...and a clean close removes it.
    assert writer.spool.pending_files() == []


def _not_writable_dir(tmp_path: Path) -> Path:
    # A directory below a regular file cannot be created or written, even by
    # root (chmod does not stop root; this does, on any file system).
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the spool directory should be")
    return blocker / "spool"


def _spool_errors() -> float:
    return REGISTRY.get_sample_value("dmobs_audit_spool_errors_total") or 0


@pytest.mark.django_db(transaction=True)
def test_unwritable_spool_in_a_request_logs_loudly_and_never_breaks_it(tmp_path, client, caplog):
    """AUDIT_DURABILITY=disk writes every entry to the spool first; with the
    spool unwritable the sign-in request still answers normally, the entry
    still reaches the store, and the failure is an error log and a metric."""
    writer = AuditWriter(
        store=DjangoStore(),
        spool=Spool(_not_writable_dir(tmp_path)),
        durability="disk",
        flush_interval=0.02,
    )
    set_writer(writer)
    before = _spool_errors()
    response = client.post("/accounts/login/", {"username": "nobody", "password": "x"})
    assert response.status_code == 200
    assert writer.flush(timeout=10)
    assert _spool_errors() == before + 1
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("could not be spooled" in str(r.msg) for r in errors), caplog.text
    assert AuditLog.objects.filter(action="failed", resource_id="nobody").count() == 1


def test_disk_full_spool_in_a_subprocess_logs_counts_and_exits_cleanly(tmp_path):
    """A full disk, made portably with RLIMIT_FSIZE (files cannot grow past 4 KiB):
    the store is unreachable (a closed port), so every entry needs the spool;
    the burst completes, the process exits 0, errors are logged and counted."""
    with TcpProxy("127.0.0.1", 9) as proxy:
        proxy.cut()  # a port on 127.0.0.1 that refuses connections
        dead_store = f"postgres://postgres@127.0.0.1:{proxy.port}/nowhere"
        burst = Burst(
            args=[
                *("--count", "2000", "--tenant", "t-full", "--metrics"),
                *("--file-size-limit", "4096"),
            ],
            env=_env(
                AUDIT_DATABASE_URL=dead_store,
                AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
                AUDIT_EXIT_FLUSH_TIMEOUT="1",
            ),
        )
        code = burst.wait(timeout=120)
    assert code == 0, burst.output()
    assert burst.has_line("burst done 2000"), burst.output()
    (metrics_line,) = [line for line in burst.lines if line.startswith("metrics ")]
    metrics = json.loads(metrics_line.split(" ", 1)[1])
    assert metrics["accepted"] == 2000
    assert metrics["spool_errors"] > 0, metrics
    assert any("could not be spooled" in line for line in burst.lines), burst.output()
    assert "Traceback" not in "".join(burst._stderr), burst.output()
    # Whatever did fit is whole lines only: a failed write never leaves half a line.
    for path in (tmp_path / "spool").glob("*.ndjson"):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n")
        for raw in data.split(b"\n"):
            if raw:
                json.loads(raw)
