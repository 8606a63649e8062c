"""Requests in flight across the server's workers, so that bulk work gives way.

A CSV export streams for minutes on the same cores and the same PostgreSQL as
the screens: two exports kept a tenant admin's list page at ~150 ms p95 instead
of ~25. Niceness helps only our own threads, never the PostgreSQL backend that
runs an export's chunk query. So an export waits before reading its next chunk
while any request of the server is in flight (``wait_for_quiet``), and the
screens get the cores and the database to themselves.

- A request counts from the outermost middleware until its view has returned a
  response (``ForegroundMiddleware``): a screen's whole work, but not a streamed
  body. An export's request marks itself as background (``background``), or its
  own first chunk would wait for itself.
- Across workers: each process writes its count and the time its last request
  ended into a file of its own in ``DMOBS_FOREGROUND_DIR`` (16 bytes, one
  ``pwrite`` per change); a waiting export reads every worker's file. gunicorn's
  master makes the directory before forking and removes a dead worker's file
  (dmobs/gunicorn.conf.py). Without the directory (runserver, tests, commands)
  only this process's requests count.
- "Quiet" is no request in flight and none ended in the last ``GRACE_SECONDS``:
  a client that sends its requests back to back leaves gaps of a millisecond or
  so between them, too short for a chunk query to fit in.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

DIR_ENV = "DMOBS_FOREGROUND_DIR"
GRACE_SECONDS = 0.02
POLL_SECONDS = 0.005
_STATE = struct.Struct("<qq")  # requests in flight, monotonic ns of the last end
_COUNTED = "_dmobs_counted"  # on a request the middleware counts right now


class _Process:
    """This process's count, mirrored to its file when the directory is set."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.last_end = 0
        self.pid = 0
        self.fd: int | None = None

    def change(self, delta: int) -> None:
        with self.lock:
            self.in_flight += delta
            if delta < 0:
                self.last_end = time.monotonic_ns()
            fd = self._file()
            if fd is not None:
                try:
                    os.pwrite(fd, _STATE.pack(self.in_flight, self.last_end), 0)
                except OSError:
                    pass  # exports then wait for nobody: a request never fails for this

    def _file(self) -> int | None:
        directory = os.environ.get(DIR_ENV)
        if not directory:
            return None
        if self.pid != os.getpid():  # first use, or a forked child: a file of its own
            self.pid = os.getpid()
            try:
                self.fd = os.open(
                    os.path.join(directory, str(self.pid)), os.O_RDWR | os.O_CREAT, 0o600
                )
            except OSError:  # the directory is gone (a temp cleaner): as above
                self.fd = None
        return self.fd


_process = _Process()


def started() -> None:
    _process.change(+1)


def finished() -> None:
    _process.change(-1)


def background(request: HttpRequest) -> None:
    """This request is bulk work (an export): it stops counting now."""
    if getattr(request, _COUNTED, False):
        setattr(request, _COUNTED, False)
        finished()


def _states() -> list[tuple[int, int]]:
    directory = os.environ.get(DIR_ENV)
    try:
        names = os.listdir(directory) if directory else None
    except OSError:
        names = None  # the directory is gone: this process's own count
    if names is None:
        with _process.lock:
            return [(_process.in_flight, _process.last_end)]
    states = []
    for name in names:
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
        except OSError:
            continue  # a worker that just exited
        try:
            data = os.pread(fd, _STATE.size, 0)
        finally:
            os.close(fd)
        if len(data) == _STATE.size:
            states.append(_STATE.unpack(data))
    return states


def busy() -> bool:
    """A request is in flight in some worker, or one ended within the grace time."""
    recent = time.monotonic_ns() - int(GRACE_SECONDS * 1e9)
    return any(count > 0 or last_end > recent for count, last_end in _states())


def wait_for_quiet(limit: float) -> float:
    """Wait while ``busy()``, at most ``limit`` seconds; the seconds waited."""
    start = time.monotonic()
    waited = 0.0
    while waited < limit and busy():
        time.sleep(POLL_SECONDS)
        waited = time.monotonic() - start
    return waited


class ForegroundMiddleware:
    """Counts each request while its view runs (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started()
        setattr(request, _COUNTED, True)
        try:
            return self.get_response(request)
        finally:
            if getattr(request, _COUNTED, False):
                setattr(request, _COUNTED, False)
                finished()
