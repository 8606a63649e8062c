"""Verify the audit log against its signed digests.

Prints "verified through T", or exactly which entries were changed, deleted
or inserted after sealing, and which digests were removed, altered or
re-signed; exits with status 1 when anything is wrong.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time

from django.core.management.base import BaseCommand, CommandError

from dmobs.integrity.keys import KeyProblem
from dmobs.integrity.service import verify_store
from dmobs.integrity.verify import NOTICES
from dmobs.models import Tenant


def parse_bound(value: str, *, end: bool) -> datetime:
    """An ISO date (the whole day) or date-time; UTC when no offset is given."""
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).date()
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"{'--to' if end else '--from'}: {value!r} is not an ISO date or date-time "
            "(like 2026-12-01 or 2026-12-01T09:30:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_tenant(value: str) -> str:
    """A tenant slug or ref id -> the tenantId of its entries; ``platform`` -> ""."""
    if value == "platform":
        return ""
    tenant = (
        Tenant.objects.filter(slug=value).first() or Tenant.objects.filter(ref_id=value).first()
    )
    if tenant is None:
        raise CommandError(f"--tenant: no tenant with slug or ref id {value!r}")
    return tenant.ref_id


class Command(BaseCommand):
    help = "Check every sealed audit entry and digest; exit 1 when something was changed."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", help="Only blocks from this date/time.")
        parser.add_argument("--to", dest="date_to", help="Only blocks up to this date/time.")
        parser.add_argument(
            "--tenant", help="One tenant's entries (slug or ref id; 'platform' for none)."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument(
            "--limit", type=int, default=1000, help="Findings listed per kind (default 1000)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="Check the blocks on this many database connections at once (PostgreSQL; "
            "default 2: each block's store hash is PostgreSQL's work, so a second core "
            "nearly doubles the rate; use 1 to leave the database server a core).",
        )

    def handle(
        self, *args, date_from=None, date_to=None, tenant=None, limit=1000, workers=2, **options
    ):
        start = parse_bound(date_from, end=False) if date_from else None
        end = parse_bound(date_to, end=True) if date_to else None
        if start and end and start > end:
            raise CommandError("--from is after --to")
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        if not 1 <= workers <= 64:
            raise CommandError("--workers must be between 1 and 64")
        tenant_id = resolve_tenant(tenant) if tenant is not None else None
        try:
            report = verify_store(
                tenant=tenant_id, date_from=start, date_to=end, limit=limit, workers=workers
            )
        except KeyProblem as exc:
            raise CommandError(str(exc)) from None
        if options.get("json"):
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            for kind, label, count, findings in report.by_kind():
                style = self.style.WARNING if kind in NOTICES else self.style.ERROR
                self.stdout.write(style(f"{label}: {count}"))
                for finding in findings:
                    self.stdout.write(f"  {finding.message}")
                if count > len(findings):
                    self.stdout.write(f"  ... and {count - len(findings)} more")
            self.stdout.write(
                (self.style.SUCCESS if report.ok else self.style.ERROR)(report.summary())
            )
        if not report.ok:
            raise CommandError("verification failed: " + report.summary())
