"""Seal the audit log: sign digests of the entries not sealed yet.

Run it once (cron, a CI job) or beside the app with ``--loop`` (the compose
service ``sealer`` does). It never touches ``audit_log()``'s callers: it reads
what the writers stored. See dmobs/integrity/seal.py for the sealing order.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dmobs.integrity.keys import KeyProblem
from dmobs.integrity.seal import Sealer, SealError, format_exact


class Command(BaseCommand):
    help = (
        "Seal new audit entries in signed, chained digests (once, or every --interval with --loop)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sealing every --interval.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between runs with --loop "
            f"(default {settings.DMOBS_AUDIT_SEAL_INTERVAL}).",
        )
        parser.add_argument(
            "--settle",
            type=float,
            default=None,
            help="Leave entries younger than this many seconds for the next run "
            f"(default {settings.DMOBS_AUDIT_SEAL_SETTLE}).",
        )
        parser.add_argument(
            "--alive-file",
            default=None,
            help="Touch this file after every run (a health check reads its age).",
        )
        parser.add_argument(
            "--runs",
            type=int,
            default=None,
            help="With --loop: stop after this many runs (default: until SIGTERM/SIGINT).",
        )
        parser.add_argument(
            "--block-size",
            type=int,
            default=None,
            help=f"Entries per digest (default {settings.DMOBS_AUDIT_SEAL_BLOCK}).",
        )

    def handle(
        self,
        *args,
        loop=False,
        interval=None,
        settle=None,
        block_size=None,
        runs=None,
        alive_file=None,
        **options,
    ):
        if block_size is not None and not 1 <= block_size <= 50_000:
            raise CommandError("--block-size must be between 1 and 50000")
        if settle is not None and settle < 0:
            raise CommandError("--settle must be 0 or more seconds")
        interval = settings.DMOBS_AUDIT_SEAL_INTERVAL if interval is None else interval
        if interval <= 0:
            raise CommandError("--interval must be more than 0 seconds")
        verbosity = options.get("verbosity", 1)
        try:
            sealer = Sealer(
                settle=settle,
                block_size=block_size,
                progress=(lambda m: self.stdout.write(m)) if verbosity > 1 else None,
            )
        except KeyProblem as exc:
            raise CommandError(str(exc)) from None
        if runs is not None and runs < 1:
            raise CommandError("--runs must be at least 1")
        stop = threading.Event()
        if loop and threading.current_thread() is threading.main_thread():
            # Finish the digest being written, then stop (compose sends SIGTERM).
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        done = 0
        while True:
            started = time.monotonic()
            try:
                result = sealer.seal()
            except SealError as exc:
                if not loop:
                    raise CommandError(str(exc)) from None
                self.stderr.write(f"audit_seal: {exc}")
            else:
                if result.missing:
                    self.stderr.write(
                        f"audit_seal: {result.missing} sealed entries are no longer in the "
                        "store (deleted?): run `manage.py audit_verify` to see which."
                    )
                if result.digests or verbosity > 1:
                    rate = result.entries / max(time.monotonic() - started, 1e-9)
                    through = format_exact(result.watermark) if result.watermark else "-"
                    self.stdout.write(
                        f"Sealed {result.entries} new and {result.late} late entries in "
                        f"{len(result.digests)} digest(s) ({rate:,.0f} entries/s); "
                        f"sealed through {through}."
                        + (" Rotated the signing key." if result.rotated else "")
                    )
            done += 1
            if alive_file:
                Path(alive_file).touch()
            if not loop or (runs is not None and done >= runs) or stop.wait(interval):
                return
