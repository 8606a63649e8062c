"""Helpers shared by the observability tests (ports, log capture)."""

from __future__ import annotations

import io
import json
import logging
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager

# Servers started by the observability tests listen on 127.0.0.1 in this range.
PORT_RANGE = range(8200, 8300)


def free_port() -> int:
    """A port of PORT_RANGE that nothing listens on right now."""
    ports = list(PORT_RANGE)
    random.shuffle(ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


@contextmanager
def captured_json_logs(level: int = logging.DEBUG) -> Iterator[list[dict]]:
    """Every log line written meanwhile, through the real JSON formatter, parsed.

    The handler hangs on the root logger like the configured stdout/file
    handlers and uses the same formatter factory, so what is asserted is what
    would be written to LOG_FILE.
    """
    from dmobs.observability.logger import json_formatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.setLevel(level)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, old_level or level))
    lines: list[dict] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines() if line)
