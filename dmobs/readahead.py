"""Read ahead of the consumer on a helper thread (exports, the integrity sealer and verifier).

The helper uses and then closes its own database connections (Django's are per
thread), runs in a copy of the caller's context (trace and log context carry
over), and stops when the consumer does: a client that goes away closes this
generator, the helper then closes ``chunks``. An error in the helper is raised
in the consumer.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
from collections.abc import Iterator

from django.db import connections

_END = object()


def lower_priority(nice: int) -> None:
    """Add ``nice`` to this thread's niceness (Linux schedules threads on their own).

    Lowering is always allowed; raising it back is not, which is why it is only
    done in helper threads that end with their work, never in pooled request threads.
    """
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except (AttributeError, OSError):
        pass  # not on Linux, or not allowed: run at normal priority


def read_ahead(chunks: Iterator, *, name: str, nice: int = 0, ahead: int = 1) -> Iterator:
    """Iterate ``chunks`` in a helper thread, up to ``ahead`` items ahead of the
    consumer (more when the consumer sometimes stops for a while)."""
    handoff: queue.Queue = queue.Queue(maxsize=ahead)
    stopped = threading.Event()

    def hand(item: object) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        if nice:
            lower_priority(nice)
        try:
            for item in chunks:
                if not hand(item):
                    return
            hand(_END)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            hand(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            connections.close_all()  # this thread's connections only

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(work,), name=name)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        thread.join(timeout=30)
