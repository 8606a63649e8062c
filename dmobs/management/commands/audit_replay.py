"""Replay the audit spool into the audit store by hand (idempotent).

Run it after a crash (or with the app stopped) to insert what a process left in
``AUDIT_SPOOL_DIR``. Segments still held open by a running writer are skipped:
that writer stores them itself. Unreadable (torn) lines are moved to a ``.torn``
file, entries the store refuses (a constraint, a value it cannot hold) to a
``.rejected`` file with the store's error, both reported on stderr; the command
then exits with status 0, because everything else was stored.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dmobs.audit.spool import Spool
from dmobs.audit.stores import refusal_test, select_store


class Command(BaseCommand):
    help = "Insert every spooled audit entry into the audit store, then remove the spool files."

    def add_arguments(self, parser):
        parser.add_argument(
            "--spool-dir",
            default=None,
            help=f"Spool directory (default: AUDIT_SPOOL_DIR, {settings.AUDIT_SPOOL_DIR}).",
        )
        parser.add_argument(
            "--retry-rejected",
            action="store_true",
            help="First put the entries of .rejected files back in line (after fixing what "
            "the store refused), then replay.",
        )

    def handle(self, *args, spool_dir=None, retry_rejected=False, **options):
        spool = Spool(spool_dir or settings.AUDIT_SPOOL_DIR)
        if retry_rejected:
            requeued = spool.requeue_rejected()
            self.stdout.write(f"Put {requeued} rejected entries back in line.")
        pending = spool.pending_files()
        if not pending:
            self.stdout.write(f"Nothing to replay in {spool.directory}.")
            return
        self.stdout.write(f"Replaying {len(pending)} spool file(s) from {spool.directory} ...")
        store = select_store()
        try:
            report = spool.replay(store.write, refuses=refusal_test(store))
        except Exception as exc:
            raise CommandError(
                f"Audit store unavailable ({exc}); spool files are kept, run again later."
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Replayed {report.replayed} entries from {report.files} file(s) "
                "(entries already stored were skipped)."
            )
        )
        if report.skipped_live:
            self.stdout.write(
                f"{report.skipped_live} file(s) are held open by a running writer and were "
                "left to it."
            )
        if report.rejected:
            self.stderr.write(
                self.style.WARNING(
                    f"{report.rejected} entr{'y' if report.rejected == 1 else 'ies'} refused by "
                    "the audit store, moved to quarantine with the store's error: "
                    + ", ".join(report.rejected_files)
                )
            )
        if report.torn_lines:
            self.stderr.write(
                self.style.WARNING(
                    f"{report.torn_lines} unreadable line(s) moved to quarantine: "
                    + ", ".join(report.torn_files)
                )
            )
