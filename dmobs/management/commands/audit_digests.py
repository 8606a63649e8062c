"""Export the signed digests as files an auditor can check offline.

Writes NDJSON (one digest per line) to a file or stdout; ``--tenant`` writes
that tenant's proofs instead (their own entry lists and Merkle paths, nothing
of other tenants). ``--public-key`` also writes the trusted public key(s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dmobs.integrity.service import digest_lines, entry_records, published_keys
from dmobs.management.commands.audit_verify import resolve_tenant


class Command(BaseCommand):
    help = "Write the audit digests (or one tenant's proofs) as NDJSON for offline verification."

    def add_arguments(self, parser):
        parser.add_argument("--out", help="File to write (default: stdout).")
        parser.add_argument(
            "--tenant", help="Only this tenant's proofs (slug, ref id, 'platform')."
        )
        parser.add_argument("--public-key", help="Also write the published keys (JSON) here.")
        parser.add_argument(
            "--entries",
            help="Also write the entries (integrity export, unmasked: for auditors with "
            "database-level trust) here.",
        )

    def handle(self, *args, out=None, tenant=None, public_key=None, entries=None, **options):
        tenant_id = resolve_tenant(tenant) if tenant is not None else None
        count = 0
        try:
            handle = open(out, "w", encoding="utf-8") if out else sys.stdout  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"--out: cannot write {out}: {exc.strerror}") from None
        try:
            for line in digest_lines(tenant=tenant_id):
                handle.write(line)
                count += 1
        finally:
            if out:
                handle.close()
        if public_key:
            Path(public_key).write_text(json.dumps(published_keys(), indent=2) + "\n")
        if entries:
            written = 0
            with open(entries, "w", encoding="utf-8") as handle:
                for record in entry_records(tenant=tenant_id):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    written += 1
            self.stdout.write(f"Wrote {written} entries to {entries}.")
        if out:
            self.stdout.write(f"Wrote {count} digests to {out}.")
