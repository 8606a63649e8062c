"""The background audit writer: queue -> batches -> audit store, spool on failure.

``audit_log()`` puts an entry on an in-memory queue and returns. One daemon
thread per process takes entries off in batches (at most ``batch_size``
entries, at most ``flush_interval`` seconds after the first one) and inserts
them into the audit store; on PostgreSQL up to ``connections`` batches are
inserted at once by write threads, each on its own connection, and the writer
thread settles them (stored, or spooled) in order. When the store fails, the
batch goes to the disk spool (fsynced) and the writer retries with exponential
backoff; once the store answers again it replays the spool. A full queue spills
to the spool on the caller's thread, so nothing is dropped and ``audit_log()``
never blocks on the database. ``flush()`` drains everything; it also runs at interpreter exit.

Durability (``AUDIT_DURABILITY``):

* ``memory`` (default): an entry lives in the queue until it is stored or
  spooled; a SIGKILL or power loss can lose what is still queued.
* ``disk``: ``audit_log()`` first appends the entry to the fsynced spool
  (group commit: concurrent callers share one flush) and only then queues it.
  Once stored, the spool segment is truncated (or removed when rotated). If the
  store refuses it, the entry stays in the spool for replay and is not written
  to disk a second time. Nothing that ``audit_log()`` returned for is lost by a
  crash of the process.

A spool that cannot be written (directory not writable, disk full) never raises
in the caller: it is logged at error level and counted in
``dmobs_audit_spool_errors``.

Why one module of about 600 lines: ``AuditWriter`` is one state machine
(queue, batches, parallel write threads settled in order, spill, replay, exit
hooks) whose promise (every accepted entry is stored or spooled, once) can only
be checked by reading it whole. The stores it writes to are
``dmobs.audit.stores``; the disk journal is ``dmobs.audit.spool``.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from django.conf import settings
from django.db import connections
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, TraceFlags

from dmobs.audit.spool import ReplayReport, Spool
from dmobs.audit.stores import refusal_test, select_store
from dmobs.audit.stores.sql import DjangoStore
from dmobs.observability import metrics
from dmobs.observability.logger import get_logger

log = get_logger("dmobs.writer")
_tracer = trace.get_tracer("dmobs.writer")

# The SDK keeps 128 links per span by default; a batch holds up to 500 entries.
MAX_BATCH_LINKS = 128


def _links(entries: list[dict[str, Any]]) -> list[Link]:
    """Links to the spans that recorded the entries (``audit_log()`` keeps the
    caller's span id in ``entry["span_id"]``; replayed entries have none)."""
    seen: set[tuple[str, str]] = set()
    links = []
    for entry in entries:
        trace_id, span_id = entry.get("trace_id"), entry.get("span_id")
        if not trace_id or not span_id or (trace_id, span_id) in seen:
            continue
        seen.add((trace_id, span_id))
        context = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        links.append(Link(context))
        if len(links) == MAX_BATCH_LINKS:
            break
    return links


def write_batch(store: Any, entries: list[dict[str, Any]], *, replay: bool = False) -> int:
    """``store.write(entries)`` inside an ``audit.write_batch`` span linked to the
    request spans whose entries it carries (a batch serves many requests, so it
    is a trace of its own, not a child of any one of them)."""
    with _tracer.start_as_current_span(
        "audit.write_batch",
        links=_links(entries),
        attributes={"audit.batch.entries": len(entries), "audit.batch.replay": replay},
    ):
        return store.write(entries)


class _FlushMarker:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


DURABILITIES = ("memory", "disk")

# A queue item: the entry and the generation of the journal segment that holds
# it (``None`` when it is only in memory).
_Item = tuple[dict[str, Any], int | None]


class AuditWriter:
    def __init__(
        self,
        *,
        store: Any,
        spool: Spool,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        queue_size: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        durability: str = "memory",
        connections: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ):
        if durability not in DURABILITIES:
            raise ValueError(f"durability must be one of {DURABILITIES}, got {durability!r}")
        self.store = store
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.durability = durability
        # Batches written at once, each on a connection of its own: while the
        # database inserts one batch, the next is already on its way, so the
        # writer is not idle between a reply and the next request.
        self.connections = max(1, connections)
        self._pool: _WriteThreads | None = None
        self._pending: deque[tuple[Future, list[_Item]]] = deque()
        self._clock = clock
        # SimpleQueue (C, no locks in Python) keeps put() and get() cheap on both
        # threads; the bound is kept by submit() from qsize(), which may let a
        # racing caller or two past it: harmless for a memory bound.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.queue_size = queue_size
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopping = False
        self._store_down = False
        self._backoff = retry_initial
        self._next_retry = 0.0
        self._spool_pending = True  # check the spool directory once at start
        self._last_spool_scan = 0.0
        # Items the writer thread has taken off the queue and not yet finished
        # with; close() spools them if the thread is stuck at exit.
        self._inflight: list[_Item] = []

    # --- caller side -----------------------------------------------------------
    def submit(self, entry: dict[str, Any]) -> None:
        """Hand an entry to the writer; never blocks on the store, never drops,
        never raises for a disk problem (that is logged and counted)."""
        metrics.entry_accepted(entry)
        if self._thread is None:
            self._ensure_started()
        generation = None
        if self.durability == "disk":
            try:
                generation = self.spool.append([entry], needs_replay=False)
            except OSError as exc:
                # Still queued for the store: only the crash guarantee is lost.
                self._report_spool_error([entry], reason="durable append", exc=exc)
        if self._queue.qsize() < self.queue_size:
            self._queue.put((entry, generation))
        else:
            if generation is not None:
                self.spool.mark_done(generation, 1, stored=False)  # on disk already
                self._spool_pending = True
            else:
                self._spill([entry], reason="queue full")

    def _spill(self, entries: list[dict[str, Any]], *, reason: str) -> None:
        try:
            self.spool.append(entries)
            self._spool_pending = True
        except OSError as exc:
            self._report_spool_error(entries, reason=reason, exc=exc)

    def _report_spool_error(self, entries: list[dict[str, Any]], *, reason: str, exc: OSError):
        # The last resort failed: say so loudly and keep the caller alive.
        metrics.AUDIT_SPOOL_ERRORS.inc(len(entries))
        log.error(
            "audit entries could not be spooled",
            reason=reason,
            error=str(exc),
            entries=len(entries),
            spool_dir=str(self.spool.directory),
            ids=[e.get("id") for e in entries[:20]],
        )

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every entry accepted so far is stored, or spooled while the
        store is down (a flush also retries the spool at once).

        Returns False when ``timeout`` passed first.
        """
        if self._thread is None or not self._thread.is_alive():
            self._drain_to_store_or_spool()
            return self._queue.empty()
        marker = _FlushMarker()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._queue.put(marker)  # markers are not bounded: a flush always gets in line
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return marker.done.wait(remaining)

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush, stop the thread, and spool whatever could not be written."""
        self.flush(timeout)
        self._stopping = True
        self._queue.put(_FlushMarker())  # wake the thread so it sees _stopping
        thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)
        leftovers = self._take_all()
        if thread is not None and thread.is_alive():
            # Stuck in a write: its batch may or may not reach the store, and
            # the interpreter will not wait for a daemon thread. Spool it too;
            # replay inserts each id at most once.
            writing = [item for _, batch in list(self._pending) for item in batch]
            leftovers = list(self._inflight) + writing + leftovers
        self._park(leftovers, reason="shutdown")
        self.spool.close()

    # --- writer thread ----------------------------------------------------------
    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dmobs-audit-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    self._step()
                except Exception:  # noqa: BLE001 - the writer must outlive any one failure
                    log.exception("audit writer loop error")
                    time.sleep(0.1)
        finally:
            try:
                self._settle_all()
            except Exception:  # noqa: BLE001
                log.exception("audit writer could not settle its last writes")
            self._close_pool()
            try:
                self.store.close()  # this thread's database connection
            except Exception:  # noqa: BLE001
                pass

    def _close_pool(self) -> None:
        """Stop the write threads; each closes its own database connection."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop(timeout=10)

    def _step(self) -> None:
        wait = self.flush_interval * 5 if not self._spool_pending else self._retry_wait()
        batch, markers = self._collect(first_timeout=max(wait, 0.01))
        # Set here, not read at scrape time: see dmobs.observability.metrics (multiprocess mode).
        metrics.AUDIT_QUEUE_DEPTH.set(self._queue.qsize())
        if batch:
            self._dispatch(batch)
        self._inflight = []
        self._settle_done()
        if markers:
            self._settle_all()  # a flush waits for every write in flight
        self._maybe_replay(force=bool(markers))
        for marker in markers:
            marker.done.set()

    def _retry_wait(self) -> float:
        return max(0.01, min(self.flush_interval, self._next_retry - self._clock()))

    def _collect(self, *, first_timeout: float) -> tuple[list[_Item], list[_FlushMarker]]:
        batch: list[_Item] = []
        self._inflight = batch
        markers: list[_FlushMarker] = []
        try:
            item = self._queue.get(timeout=first_timeout)
        except queue.Empty:
            return batch, markers
        deadline = time.monotonic() + self.flush_interval
        while True:
            if isinstance(item, _FlushMarker):
                markers.append(item)
                # Write what we have now; keep collecting only what is already queued.
                deadline = 0.0
            else:
                batch.append(item)
            if len(batch) >= self.batch_size or self._stopping:
                break
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch, markers

    def _write(self, batch: list[_Item]) -> None:
        """Write a batch on this thread and settle it."""
        if self._store_down and self._clock() < self._next_retry:
            self._park(batch, reason="audit store down")
            return
        try:
            write_batch(self.store, [entry for entry, _ in batch])
        except Exception as exc:  # noqa: BLE001 - any store failure means "spool it"
            self._settle(batch, exc)
            return
        self._settle(batch, None)

    def _dispatch(self, batch: list[_Item]) -> None:
        """Hand a batch to a write thread (at most ``connections`` in flight)."""
        if self.connections == 1 or (self._store_down and self._clock() < self._next_retry):
            self._write(batch)
            return
        while len(self._pending) >= self.connections:
            self._settle_oldest()
        if self._pool is None:
            self._pool = _WriteThreads(self.connections, self.store)
        entries = [entry for entry, _ in batch]
        self._pending.append((self._pool.submit(entries), batch))

    def _settle_oldest(self) -> None:
        future, batch = self._pending[0]
        exc = future.exception()  # waits for it
        self._pending.popleft()
        self._settle(batch, exc)

    def _settle_done(self) -> None:
        while self._pending and self._pending[0][0].done():
            self._settle_oldest()

    def _settle_all(self) -> None:
        while self._pending:
            self._settle_oldest()

    def _settle(self, batch: list[_Item], exc: BaseException | None) -> None:
        if exc is not None:
            metrics.AUDIT_STORE_ERRORS.inc()
            refuses = refusal_test(self.store)
            if refuses is not None and refuses(exc):
                # The store is up but refused something in the batch: spool it
                # and replay at once, which stores the rest and sets the refused
                # entries apart. No backoff for the entries that follow.
                log.error("audit store refused a batch; replaying it apart", error=str(exc))
                self._park(batch, reason="audit store refused the batch")
                self._spool_pending = True
                return
            self._mark_down(exc)
            self._park(batch, reason="audit store write failed")
            return
        metrics.AUDIT_WRITTEN.inc(len(batch))
        self._mark_up()
        self._journal_done(batch, stored=True)

    def _park(self, items: list[_Item], *, reason: str) -> None:
        """Leave items for replay: journaled ones stay in their segment, the
        rest are spilled to the spool."""
        if not items:
            return
        self._journal_done(items, stored=False)
        memory_only = [entry for entry, generation in items if generation is None]
        if memory_only:
            self._spill(memory_only, reason=reason)

    def _journal_done(self, items: list[_Item], *, stored: bool) -> None:
        counts = Counter(generation for _, generation in items if generation is not None)
        if not counts:
            return
        for generation, count in counts.items():
            try:
                self.spool.mark_done(generation, count, stored=stored)
            except OSError as exc:  # truncating a stored journal failed: replay copes
                log.error("audit journal bookkeeping failed", error=str(exc))
        if not stored:
            self._spool_pending = True

    def _mark_down(self, exc: Exception) -> None:
        if not self._store_down:
            log.error("audit store write failed; spooling", error=str(exc))
        self._store_down = True
        self._next_retry = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self.retry_max)

    def _mark_up(self) -> None:
        if self._store_down:
            log.info("audit store is back")
        self._store_down = False
        self._backoff = self.retry_initial

    def _maybe_replay(self, *, force: bool = False) -> None:
        now = self._clock()
        if not self._spool_pending and now - self._last_spool_scan > 30:
            # Other processes (or an earlier run) may have left spool files.
            self._last_spool_scan = now
            self._spool_pending = self.spool.has_pending()
        if not self._spool_pending:
            return
        if self._store_down and now < self._next_retry and not force:
            return
        try:
            report = self.replay()
        except Exception as exc:  # noqa: BLE001
            metrics.AUDIT_STORE_ERRORS.inc()
            self._mark_down(exc)
            return
        self._mark_up()
        if report.replayed:
            log.info("audit spool replayed", entries=report.replayed, files=report.files)

    def replay(self) -> ReplayReport:
        report = self.spool.replay(self._write_for_replay, refuses=refusal_test(self.store))
        self._spool_pending = self.spool.has_pending()
        return report

    def _write_for_replay(self, entries: list[dict]) -> int:
        written = write_batch(self.store, entries, replay=True)
        metrics.AUDIT_WRITTEN.inc(len(entries))
        return written

    def _drain_to_store_or_spool(self) -> None:
        batch = self._take_all()
        while batch:
            self._write(batch[: self.batch_size])
            batch = batch[self.batch_size :]

    def _take_all(self) -> list[_Item]:
        items: list[_Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if isinstance(item, _FlushMarker):
                item.done.set()
            else:
                items.append(item)


class _WriteThreads:
    """Daemon threads that write batches with ``store.write``, each on its own
    database connection, which it closes when stopped.

    Not a ThreadPoolExecutor: the interpreter joins an executor's threads at
    exit, so a write stuck on a dead connection would hang the process; like
    the writer thread, these are daemons, and ``close()`` spools what they hold.
    """

    def __init__(self, count: int, store: Any):
        self._store = store
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"dmobs-audit-store-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, entries: list[dict[str, Any]]) -> Future:
        future: Future = Future()
        self._jobs.put((future, entries))
        return future

    def _run(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                future, entries = job
                future.set_running_or_notify_cancel()
                try:
                    future.set_result(write_batch(self._store, entries))
                except BaseException as exc:  # noqa: BLE001 - handed to the writer thread
                    future.set_exception(exc)
        finally:
            try:
                self._store.close()  # this thread's connection
            except Exception:  # noqa: BLE001
                pass

    def stop(self, *, timeout: float) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)


class InlineAuditWriter(AuditWriter):
    """Writes each entry on the caller's thread and connection (spooling on failure).

    For scripts that want an entry stored before they go on, and for tests
    whose database transaction must also hold the audit entries. Set with
    ``AUDIT_WRITER_MODE=inline``; the default is the background thread. The
    entry is stored (or spooled, fsynced) before ``submit()`` returns, which is
    at least as durable as ``AUDIT_DURABILITY=disk``.
    """

    def submit(self, entry: dict[str, Any]) -> None:
        metrics.entry_accepted(entry)
        self._write([(entry, None)])

    def flush(self, timeout: float | None = 10.0) -> bool:
        return True


# --- the process-wide writer ---------------------------------------------------

_writer: AuditWriter | None = None
_writer_lock = threading.Lock()


def build_writer() -> AuditWriter:
    cls = InlineAuditWriter if settings.AUDIT_WRITER_MODE == "inline" else AuditWriter
    store = select_store()
    return cls(
        store=store,
        spool=Spool(settings.AUDIT_SPOOL_DIR),
        batch_size=settings.AUDIT_BATCH_SIZE,
        flush_interval=settings.AUDIT_FLUSH_INTERVAL,
        queue_size=settings.AUDIT_QUEUE_SIZE,
        retry_max=settings.AUDIT_RETRY_MAX_SECONDS,
        durability=getattr(settings, "AUDIT_DURABILITY", "memory"),
        connections=settings.AUDIT_WRITER_CONNECTIONS if _writes_in_parallel(store) else 1,
    )


def _writes_in_parallel(store: Any) -> bool:
    """Only PostgreSQL takes concurrent batches well: SQLite would answer "database
    is locked" to the second connection."""
    return isinstance(store, DjangoStore) and connections[store.alias].vendor == "postgresql"


def get_writer() -> AuditWriter:
    global _writer
    writer = _writer
    if writer is None:
        with _writer_lock:
            if _writer is None:
                _writer = build_writer()
                _install_exit_hooks()
            writer = _writer
    return writer


def set_writer(writer: AuditWriter | None) -> AuditWriter | None:
    """Swap the process-wide writer (tests, benchmarks). Returns the old one."""
    global _writer
    with _writer_lock:
        old, _writer = _writer, writer
    return old


def flush(timeout: float | None = 10.0) -> bool:
    writer = _writer
    return True if writer is None else writer.flush(timeout)


_hooks_installed = False


def _at_exit() -> None:
    writer = _writer
    if writer is None:
        return
    try:
        writer.close(timeout=settings.AUDIT_EXIT_FLUSH_TIMEOUT)
    except Exception:  # noqa: BLE001 - never raise from atexit
        log.exception("audit writer could not close cleanly")


def _on_sigterm(signum, frame):
    # Turn SIGTERM into a normal exit so atexit flushes or spools the queue.
    raise SystemExit(128 + signum)


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main interpreter
            pass


def _after_fork_in_child() -> None:
    # The parent's thread does not exist in the child; its queue lock may be held.
    global _writer, _writer_lock
    _writer = None
    _writer_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
