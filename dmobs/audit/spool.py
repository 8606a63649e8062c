"""The append-only disk spool (and, with ``AUDIT_DURABILITY=disk``, journal) of the
audit writer.

Entries are appended to a *segment* file, one JSON record per line, and
``fdatasync``ed before ``append()`` returns. Each process writes segments of its
own and holds an exclusive ``flock`` on its open segment for as long as it has
it open, which is how a replayer tells a live segment from one whose process
died: a dead process's locks are gone, so its segments can be replayed, while a
running process's open segment is left alone (its own writer stores it).

Group commit: concurrent ``append()`` calls queue their lines; the first caller
to find no write in progress becomes the leader, writes every queued line with
one ``write`` + one ``fdatasync``, and wakes the others. Under load many
callers share one disk flush, which is what keeps ``AUDIT_DURABILITY=disk``
fast.

Two uses:

* spill (``needs_replay=True``, the default): the entries could not be stored
  (store down, queue full, shutdown); the segment must be replayed later.
* journal (``needs_replay=False``, durability ``disk``): every entry is written
  here before ``audit_log()`` returns and also queued for the store. The writer
  reports stored entries with ``mark_done()``; once everything appended to the
  open segment is stored, it is truncated to empty, and a rotated segment whose
  entries are all stored is removed. An entry the store refused is reported with
  ``stored=False``, which turns its segment into one to replay.

Replay takes each segment it can lock, inserts every complete line with an
idempotent ``write`` (the id is fixed before the first insert), and removes the
file while still holding the lock. A line that cannot be parsed (a torn tail
after a crash, or damage) is copied to a ``.torn`` quarantine file next to it,
logged at error level and counted; everything else replays.

Why one module of about 550 lines: the journal's file format, locking, group
commit, rotation, replay and quarantine share one set of invariants (a line is
either replayed, kept, or quarantined, never lost or written twice); split,
they would have to be re-read together anyway. Its scrape-time collector is at
the end.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dmobs.observability import metrics
from dmobs.observability.logger import get_logger
from dmobs.records import entry_to_record, record_to_entry

log = get_logger("dmobs.spool")

SPOOL_SUFFIX = ".ndjson"
TORN_SUFFIX = ".torn"
REJECTED_SUFFIX = ".rejected"
DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass
class ReplayReport:
    files: int = 0
    replayed: int = 0
    torn_lines: int = 0
    torn_files: list[str] = field(default_factory=list)
    rejected: int = 0
    rejected_files: list[str] = field(default_factory=list)
    skipped_live: int = 0


@dataclass
class _Segment:
    generation: int
    path: Path
    fd: int
    appended: int = 0  # entries durably in the file
    done: int = 0  # of those, entries the writer has stored (or handed to replay)
    needs_replay: bool = False


class Spool:
    def __init__(
        self, directory: Path | str, *, max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES
    ):
        self.directory = Path(directory)
        self.max_segment_bytes = max_segment_bytes
        # Group commit state, guarded by _cond.
        self._cond = threading.Condition()
        self._queued: list[tuple[int, bytes, int, bool]] = []
        self._next_seq = 1
        self._resolved_seq = 0
        self._leader_busy = False
        self._outcomes: dict[int, int | OSError] = {}
        # Files, guarded by _io: the open segment and rotated ones still tracked.
        self._io = threading.Lock()
        self._current: _Segment | None = None
        self._rotated: dict[int, _Segment] = {}
        self._generation = 0
        self._owner_pid = os.getpid()
        self.disk_flushes = 0  # fdatasync calls, for tests and benchmarks of group commit

    # --- append --------------------------------------------------------------
    def append(self, entries: Iterable[dict[str, Any]], *, needs_replay: bool = True) -> int:
        """Append entries durably and return the generation of the segment.

        Raises ``OSError`` when the disk refuses (not writable, full); a failed
        write is cut back off the file, so it never leaves half a line before
        the next one.
        """
        payload = "".join(
            json.dumps(entry_to_record(e), separators=(",", ":"), ensure_ascii=False) + "\n"
            for e in entries
        ).encode()
        if not payload:
            return self._generation
        count = payload.count(b"\n")
        with self._cond:
            seq = self._next_seq
            self._next_seq += 1
            self._queued.append((seq, payload, count, needs_replay))
            while seq > self._resolved_seq:
                if self._leader_busy:
                    self._cond.wait()
                    continue
                self._lead()
            outcome = self._outcomes.pop(seq)
        if isinstance(outcome, OSError):
            raise outcome
        return outcome

    def _lead(self) -> None:
        """Write every queued line with one write and one flush (called holding _cond)."""
        self._leader_busy = True
        group, self._queued = self._queued, []
        outcome: int | OSError = OSError(errno.EINTR, "spool write interrupted")
        self._cond.release()
        try:
            try:
                outcome = self._write_group(group)
            except OSError as exc:
                outcome = exc
        finally:
            self._cond.acquire()
            for seq, *_ in group:
                self._outcomes[seq] = outcome
            self._resolved_seq = group[-1][0]
            self._leader_busy = False
            self._cond.notify_all()

    def _write_group(self, group: list[tuple[int, bytes, int, bool]]) -> int:
        data = b"".join(payload for _, payload, _, _ in group)
        count = sum(n for _, _, n, _ in group)
        with self._io:
            segment = self._open_segment()
            start = os.fstat(segment.fd).st_size
            try:
                view = memoryview(data)
                while view:
                    written = os.write(segment.fd, view)
                    view = view[written:]
                os.fdatasync(segment.fd)
                self.disk_flushes += 1
            except OSError:
                # Cut the partial write back off so the next line starts clean;
                # if even that fails, retire the file (replay quarantines the tail).
                try:
                    os.ftruncate(segment.fd, start)
                except OSError:
                    self._seal_current(force=True)
                raise
            segment.appended += count
            if any(needs_replay for *_, needs_replay in group):
                segment.needs_replay = True
            generation = segment.generation
            if start + len(data) >= self.max_segment_bytes:
                self._seal_current(force=False)
        metrics.AUDIT_SPOOLED.inc(count)
        return generation

    def _open_segment(self) -> _Segment:
        if self._current is not None and os.getpid() != self._owner_pid:
            # Inherited across fork: the parent owns that file and its lock.
            os.close(self._current.fd)
            self._current = None
            self._rotated = {}
        if self._current is not None:
            return self._current
        self._owner_pid = os.getpid()
        # Entries carry before/after states: only this user may read the spool.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"spool-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}{SPOOL_SUFFIX}"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process has the file open
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the new name survives a crash
            finally:
                os.close(dir_fd)
        except OSError:
            os.close(fd)
            raise
        self._generation += 1
        self._current = _Segment(self._generation, path, fd)
        return self._current

    def _seal_current(self, *, force: bool) -> None:
        """Stop appending to the open segment (called holding _io)."""
        segment = self._current
        if segment is None:
            return
        self._current = None
        if force or segment.needs_replay:
            os.close(segment.fd)  # releases the lock: replay may take it now
        else:
            # Journal entries still on their way to the store: keep tracking.
            self._rotated[segment.generation] = segment
            self._retire_if_done(segment)

    # --- journal bookkeeping ---------------------------------------------------
    def mark_done(self, generation: int, count: int, *, stored: bool) -> None:
        """The writer is done with ``count`` journal entries of ``generation``.

        ``stored=False`` means the store refused them: they stay in the file,
        which becomes a segment to replay.
        """
        with self._io:
            segment = self._current
            if segment is None or segment.generation != generation:
                segment = self._rotated.get(generation)
            if segment is None:
                return  # already handed to replay
            segment.done += count
            if not stored:
                segment.needs_replay = True
                if segment is not self._current:
                    del self._rotated[generation]
                    os.close(segment.fd)
                return
            self._retire_if_done(segment)

    def _retire_if_done(self, segment: _Segment) -> None:
        if segment.needs_replay or segment.done < segment.appended:
            return
        if segment is self._current:
            if segment.appended:
                os.ftruncate(segment.fd, 0)  # every entry in it is stored
                segment.appended = segment.done = 0
            return
        self._rotated.pop(segment.generation, None)
        try:
            os.unlink(segment.path)
        except FileNotFoundError:
            pass
        os.close(segment.fd)

    def seal(self) -> None:
        """Make the open segment replayable if it holds entries that need replay."""
        with self._io:
            if self._current is not None and self._current.needs_replay:
                self._seal_current(force=True)

    def close(self) -> None:
        """Close every file; remove those whose entries are all stored."""
        with self._io:
            segments = list(self._rotated.values())
            if self._current is not None:
                segments.append(self._current)
            self._current = None
            self._rotated = {}
            for segment in segments:
                if os.getpid() != self._owner_pid:
                    continue
                if not segment.needs_replay and segment.done >= segment.appended:
                    try:
                        os.unlink(segment.path)
                    except FileNotFoundError:
                        pass
                os.close(segment.fd)

    def __del__(self) -> None:
        # A dropped spool must not keep its files locked (or its descriptors open).
        segments = list(getattr(self, "_rotated", {}).values())
        if getattr(self, "_current", None) is not None:
            segments.append(self._current)
        for segment in segments:
            if os.getpid() == self._owner_pid:
                try:
                    os.close(segment.fd)
                except OSError:
                    pass

    # --- replay ----------------------------------------------------------------
    def pending_files(self) -> list[Path]:
        """Every segment file in the directory, live or not."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SPOOL_SUFFIX))

    def requeue_rejected(self) -> int:
        """Put the entries of every ``.rejected`` file back in line for replay (once
        a person has fixed what the store refused: its schema, or the file itself).
        Returns how many; lines that cannot be read stay in their file."""
        if not self.directory.is_dir():
            return 0
        requeued = 0
        for path in sorted(self.directory.glob("*" + REJECTED_SUFFIX)):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # a replay may still be writing it
                entries, unreadable = [], []
                for raw in _read_all(fd).splitlines():
                    if not raw.strip():
                        continue
                    try:
                        entries.append(record_to_entry(json.loads(raw)["record"]))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        unreadable.append(raw)
                if entries:
                    self.append(entries)
                    self.seal()
                if unreadable:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, b"".join(raw + b"\n" for raw in unreadable), 0)
                    os.fsync(fd)
                else:
                    os.unlink(path)
                requeued += len(entries)
            finally:
                os.close(fd)
        return requeued

    def has_pending(self) -> bool:
        """Are there segments to replay (not held open by a running writer)?"""
        replayable = 0
        for path in self.pending_files():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                replayable += 1
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
        return bool(replayable)

    def replay(
        self,
        write: Callable[[list[dict[str, Any]]], int],
        *,
        batch_size: int = 1000,
        refuses: Callable[[BaseException], bool] | None = None,
    ) -> ReplayReport:
        """Insert every spooled entry with ``write`` and remove the spool files.

        ``write`` must be idempotent on the entry id. If it raises, the file is
        kept whole and the error propagates: a later replay starts it again.
        Except when ``refuses(error)`` says the store answered but refused the
        data (a constraint, a value it cannot hold): then the batch is split
        until the refused entries are alone, the others are stored, and the
        refused ones go to a ``.rejected`` file (fsynced, with the store's error)
        for a person. Without that, one bad entry would stop every replay at its
        file, and every file after it, for good.
        This spool's own spilled segment is sealed first; journal segments still
        in use, here or in another running process, are skipped and counted in
        ``skipped_live``.
        """
        self.seal()
        report = ReplayReport()
        for path in self.pending_files():
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another process replayed it meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    report.skipped_live += 1
                    continue
                if os.fstat(fd).st_nlink == 0:
                    continue
                entries, torn = _parse(_read_all(fd))
                rejected: list[tuple[dict[str, Any], BaseException]] = []
                for start in range(0, len(entries), batch_size):
                    rejected += _write_apart(write, entries[start : start + batch_size], refuses)
                if torn:
                    _quarantine(path, torn, report)
                if rejected:
                    _reject(path, rejected, report)
                os.unlink(path)
                report.files += 1
                report.replayed += len(entries) - len(rejected)
                metrics.AUDIT_REPLAYED.inc(len(entries) - len(rejected))
            finally:
                os.close(fd)
        return report


def _write_apart(
    write: Callable[[list[dict[str, Any]]], int],
    batch: list[dict[str, Any]],
    refuses: Callable[[BaseException], bool] | None,
) -> list[tuple[dict[str, Any], BaseException]]:
    """Write ``batch``; if the store refuses it, halve it until each refused entry
    is alone. Returns the refused entries with their errors; any other error
    propagates (the store is down: the file stays for a later replay)."""
    try:
        write(batch)
        return []
    except Exception as exc:
        if refuses is None or not refuses(exc):
            raise
        if len(batch) == 1:
            return [(batch[0], exc)]
    middle = len(batch) // 2
    return _write_apart(write, batch[:middle], refuses) + _write_apart(
        write, batch[middle:], refuses
    )


def _reject(
    path: Path, rejected: list[tuple[dict[str, Any], BaseException]], report: ReplayReport
) -> None:
    rejected_path = path.with_name(path.name[: -len(SPOOL_SUFFIX)] + REJECTED_SUFFIX)
    payload = b"".join(
        json.dumps(
            {"record": entry_to_record(entry), "error": str(exc)}, ensure_ascii=False, default=str
        ).encode()
        + b"\n"
        for entry, exc in rejected
    )
    while True:
        with open(rejected_path, "ab") as out:
            # requeue_rejected() may be taking this file at the same moment.
            fcntl.flock(out.fileno(), fcntl.LOCK_EX)
            if os.fstat(out.fileno()).st_nlink == 0:
                continue  # it was taken and removed: write a new one
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
            break
    for entry, exc in rejected:
        log.error(
            "audit entry refused by the store, moved to quarantine",
            id=entry.get("id"),
            error=str(exc),
            spool_file=str(path),
            quarantine_file=str(rejected_path),
        )
    metrics.AUDIT_REJECTED.inc(len(rejected))
    report.rejected += len(rejected)
    report.rejected_files.append(str(rejected_path))


def _quarantine(path: Path, torn: list[tuple[int, bytes]], report: ReplayReport) -> None:
    torn_path = path.with_name(path.name[: -len(SPOOL_SUFFIX)] + TORN_SUFFIX)
    with open(torn_path, "ab") as out:
        for _line_no, raw in torn:
            out.write(raw + b"\n")
        out.flush()
        os.fsync(out.fileno())
    for line_no, raw in torn:
        log.error(
            "audit spool line unreadable, moved to quarantine",
            spool_file=str(path),
            quarantine_file=str(torn_path),
            line=line_no,
            bytes=len(raw),
        )
    metrics.AUDIT_TORN_LINES.inc(len(torn))
    report.torn_lines += len(torn)
    report.torn_files.append(str(torn_path))


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _parse(data: bytes) -> tuple[list[dict[str, Any]], list[tuple[int, bytes]]]:
    entries: list[dict[str, Any]] = []
    torn: list[tuple[int, bytes]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            entries.append(record_to_entry(json.loads(raw)))
        except (ValueError, KeyError, TypeError, AttributeError):
            torn.append((number, raw))
    return entries, torn


# --- the spool, read at scrape time ---------------------------------------------


class SpoolCollector(Collector):
    """Gauges of the spool directory, read from disk when Prometheus scrapes."""

    def __init__(self, directory: Path | str | None = None):
        self._directory = directory

    def directory(self) -> Path | None:
        if self._directory is not None:
            return Path(self._directory)
        try:
            from django.conf import settings

            return Path(settings.AUDIT_SPOOL_DIR)
        except Exception:  # noqa: BLE001 - no settings: nothing to report
            return None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        files = 0
        size = 0
        oldest: float | None = None
        torn = 0
        directory = self.directory()
        if directory is not None and directory.is_dir():
            for entry in os.scandir(directory):
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # replayed and removed while we looked
                if entry.name.endswith(SPOOL_SUFFIX):
                    files += 1
                    size += stat.st_size
                    oldest = stat.st_mtime if oldest is None else min(oldest, stat.st_mtime)
                elif entry.name.endswith((TORN_SUFFIX, REJECTED_SUFFIX)):
                    torn += 1
        yield GaugeMetricFamily(
            "dmobs_audit_spool_pending_files", "Spool files waiting to be replayed.", value=files
        )
        yield GaugeMetricFamily(
            "dmobs_audit_spool_pending_bytes", "Bytes in spool files waiting.", value=size
        )
        yield GaugeMetricFamily(
            "dmobs_audit_spool_oldest_age_seconds",
            "Age of the oldest waiting spool file (0 when none).",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest),
        )
        yield GaugeMetricFamily(
            "dmobs_audit_spool_quarantined_files",
            "Quarantine files: unreadable spool lines, entries the store refused (need a person).",
            value=torn,
        )


SPOOL_COLLECTOR = metrics.register_scrape_collector(SpoolCollector())
