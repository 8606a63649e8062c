"""The process under test of tests/dmobs/test_faults.py: a burst of audit_log() calls.

    python -m tests.faultproc burst --count 100000 --tenant T --ids-file F [--rate R]
        [--threads N] [--settle]

Runs with the settings the environment gives it (DJANGO_SETTINGS_MODULE,
DATABASE_URL, AUDIT_DATABASE_URL, AUDIT_DURABILITY, AUDIT_SPOOL_DIR, ...), the
real process-wide writer, and the real exit hooks (atexit, SIGTERM). Every id
that audit_log() returned is appended to the ids file with one unbuffered
write, so it is on record even if the process is killed the next instant.
Progress goes to stdout as ``accepted N`` lines for the test to act on.

``--settle`` (after the burst): call flush() until the spool is empty, i.e.
until everything is in the store, then print ``settled``. ``--metrics``: print
the writer's counters as one JSON line before exiting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def burst(args: argparse.Namespace) -> int:
    _setup()
    from dmobs.audit import audit_log, flush
    from dmobs.audit.writer import get_writer

    writer = get_writer()
    ids_fd = (
        os.open(args.ids_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if args.ids_file
        else None
    )
    per_thread = args.count // args.threads
    accepted = 0
    accepted_lock = threading.Lock()
    started = time.monotonic()

    def run(worker: int) -> None:
        nonlocal accepted
        for i in range(per_thread):
            entry_id = audit_log(
                tenant_id=args.tenant,
                actor_type="agent",
                actor_id=f"agent-{worker}",
                actor_name="Fault burst",
                action="completed",
                resource_type="activity",
                resource_id=f"{worker}-{i}",
                description=f"burst entry {worker}-{i}",
                after={"i": i},
            )
            if ids_fd is not None:
                os.write(ids_fd, entry_id.encode() + b"\n")
            with accepted_lock:
                accepted += 1
                n = accepted
            if n % 5000 == 0:
                _say(f"accepted {n}")
            if args.rate and i % 100 == 99:
                # Pace the burst so it lasts long enough to cut the store under it.
                ahead = (i + 1) * args.threads / args.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

    if args.threads == 1:
        run(0)  # on the main thread, where SIGTERM lands
    else:
        threads = [threading.Thread(target=run, args=(w,)) for w in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    _say(f"burst done {accepted} in {time.monotonic() - started:.2f}s")

    if args.settle:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            flush(timeout=30)
            if not writer.spool.pending_files() and writer._queue.empty():
                break
            time.sleep(0.2)
        else:
            _say("not settled")
            return 1
        _say("settled")
    if args.metrics:
        flush(timeout=10)
        from prometheus_client import REGISTRY

        names = ("accepted", "written", "spooled", "replayed")
        values = {
            name: REGISTRY.get_sample_value(f"dmobs_audit_entries_{name}_total") for name in names
        }
        values["spool_errors"] = REGISTRY.get_sample_value("dmobs_audit_spool_errors_total")
        values["store_errors"] = REGISTRY.get_sample_value("dmobs_audit_store_errors_total")
        _say("metrics " + json.dumps(values))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests.faultproc")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("burst")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--ids-file", default="")
    p.add_argument("--rate", type=float, default=0.0, help="calls per second (0: flat out)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--settle", action="store_true")
    p.add_argument("--metrics", action="store_true")
    p.add_argument(
        "--file-size-limit",
        type=int,
        default=0,
        help="RLIMIT_FSIZE in bytes: files cannot grow past it, as on a full disk",
    )
    args = parser.parse_args(argv)
    if args.file_size_limit:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.file_size_limit, args.file_size_limit))
    return burst(args)


if __name__ == "__main__":
    sys.exit(main())
