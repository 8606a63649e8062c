"""The append-only disk spool of the audit writer.

When the audit store is down (or the queue is full) entries are appended to a
spool file, one JSON record per line, fsynced before the append returns. Each
process appends to a file of its own; replay takes a file under an exclusive
``flock``, inserts every complete line (idempotently: the id is fixed), and
unlinks the file while still holding the lock. An appender that had the file
open re-checks ``st_nlink`` after locking, so it never writes into a file that
replay has already removed.

A line that cannot be parsed (a torn tail after a crash, or damage) is moved to
a ``.torn`` quarantine file next to it and reported; everything else replays.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmobs import metrics
from dmobs.logger import get_logger
from dmobs.records import entry_to_record, record_to_entry

log = get_logger("dmobs.spool")

SPOOL_SUFFIX = ".ndjson"
TORN_SUFFIX = ".torn"


@dataclass
class ReplayReport:
    files: int = 0
    replayed: int = 0
    torn_lines: int = 0
    torn_files: list[str] = field(default_factory=list)


class Spool:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None

    # --- append --------------------------------------------------------------
    def _open_new(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"spool-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}{SPOOL_SUFFIX}"
        self._path = self.directory / name
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new name survives a crash
        finally:
            os.close(dir_fd)
        return fd

    def append(self, entries: Iterable[dict[str, Any]]) -> int:
        """Append entries durably; raise OSError when the disk refuses."""
        payload = "".join(
            json.dumps(entry_to_record(e), separators=(",", ":"), ensure_ascii=False) + "\n"
            for e in entries
        ).encode()
        if not payload:
            return 0
        count = payload.count(b"\n")
        with self._lock:
            if self._fd is not None and self._path is not None and os.getpid() != self._owner:
                self._fd = None  # inherited across fork: use a file of our own
            while True:
                if self._fd is None:
                    self._fd = self._open_new()
                    self._owner = os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                if os.fstat(self._fd).st_nlink == 0:
                    # Replay took and removed this file; start a new one.
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None
                    continue
                break
            try:
                view = memoryview(payload)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fsync(self._fd)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        metrics.AUDIT_SPOOLED.inc(count)
        return count

    _owner: int = -1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # --- replay ----------------------------------------------------------------
    def pending_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SPOOL_SUFFIX))

    def has_pending(self) -> bool:
        return bool(self.pending_files())

    def replay(
        self, write: Callable[[list[dict[str, Any]]], int], *, batch_size: int = 1000
    ) -> ReplayReport:
        """Insert every spooled entry with ``write`` and remove the spool files.

        ``write`` must be idempotent on the entry id. If it raises, the file is
        kept whole and the error propagates: a later replay starts it again.
        """
        report = ReplayReport()
        for path in self.pending_files():
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another process replayed it meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink == 0:
                    continue
                data = _read_all(fd)
                entries, torn = _parse(data)
                for start in range(0, len(entries), batch_size):
                    write(entries[start : start + batch_size])
                if torn:
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
                os.unlink(path)
                report.files += 1
                report.replayed += len(entries)
                metrics.AUDIT_REPLAYED.inc(len(entries))
            finally:
                os.close(fd)
        return report


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
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entries.append(record_to_entry(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            torn.append((number, raw))
    return entries, torn
