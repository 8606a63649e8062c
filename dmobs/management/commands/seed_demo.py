"""Load the demo world: three tenants, their people, reviewers, super admins and
several thousand realistic audit entries over the last 90 days. Idempotent."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction

from dmobs.audit.stores.mongo import MongoStore
from dmobs.demo import dataset, world
from dmobs.demo import platform as demo_platform
from dmobs.models import AuditLog, LlmCall, Membership, ReviewerAssignment, SpendCap, Tenant
from dmobs.records import model_values

# Trace ids of the first demo scenarios: if any is stored, the demo entries are.
MARKER_TRACES = 20


class Command(BaseCommand):
    help = (
        "Create the demo tenants (acme, globex, initech), users (sarah, james, rita, root, ...; "
        f"password {world.DEMO_PASSWORD}) and ~{world.DEMO_ENTRIES:,} audit entries over the last "
        f"{world.DEMO_DAYS} days. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--entries",
            type=int,
            default=world.DEMO_ENTRIES,
            help=f"About how many audit entries to create (default {world.DEMO_ENTRIES:,}).",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=world.DEMO_DAYS,
            help=f"Spread the entries over this many days until now (default {world.DEMO_DAYS}).",
        )

    def handle(self, *args, entries: int, days: int, **options):
        if entries < 1:
            raise CommandError(f"--entries must be a positive number, got {entries}")
        if not 1 <= days <= 3650:
            raise CommandError(f"--days must be between 1 and 3650, got {days}")
        started = time.perf_counter()

        tenants, created_tenants = self._tenants()
        self.stdout.write(f"Tenants: {len(tenants)} ({created_tenants} new)")
        users, created_users = self._users()
        self.stdout.write(f"Users: {len(users)} ({created_users} new)")
        new_links = self._memberships(tenants, users)
        self.stdout.write(f"Memberships and reviewer assignments: {new_links} new")

        casts, staff = dataset.demo_casts(
            tenant_refs={slug: t.ref_id for slug, t in tenants.items()},
            user_refs={name: u.ref_id for name, u in users.items()},
        )
        self.stdout.write(f"Generating ~{entries:,} audit entries over {days} days ...")
        rows = dataset.generate_demo_entries(
            casts=casts, staff=staff, now=datetime.now(UTC), days=days, target=entries
        )
        inserted = self._entries(rows)
        inserted += self._platform(tenants, casts)

        demo_refs = [t.ref_id for t in tenants.values()]
        stored = AuditLog.objects.filter(tenant_id__in=demo_refs).count()
        summary = (
            f"Done in {time.perf_counter() - started:.1f} s: {len(tenants)} tenants, "
            f"{len(users)} users, {inserted:,} entries inserted "
            f"({stored:,} entries in the demo tenants). "
            f"Sign in as sarah, james, rita or root with password {world.DEMO_PASSWORD}."
        )
        self.stdout.write(self.style.SUCCESS(summary))

    def _tenants(self) -> tuple[dict[str, Tenant], int]:
        tenants, created = {}, 0
        for spec in world.DEMO_TENANTS:
            tenant, was_created = Tenant.objects.get_or_create(
                slug=spec.slug,
                defaults={"name": spec.name, "plan": spec.plan, "ref_id": spec.ref_id},
            )
            tenants[spec.slug] = tenant
            created += was_created
        return tenants, created

    def _users(self) -> tuple[dict, int]:
        User = get_user_model()
        # Hash once: every demo user has the same password, and hashing is slow on purpose.
        password_hash = make_password(world.DEMO_PASSWORD)
        users, created = {}, 0
        for spec in world.DEMO_USERS:
            user, was_created = User.objects.get_or_create(
                username=spec.username,
                defaults={
                    "ref_id": spec.ref_id,
                    "first_name": spec.first_name,
                    "last_name": spec.last_name,
                    "email": spec.email,
                    "password": password_hash,
                    "is_superuser": spec.is_superuser,
                    "is_staff": spec.is_superuser,
                    "time_zone": spec.time_zone,
                },
            )
            users[spec.username] = user
            created += was_created
        return users, created

    def _memberships(self, tenants: dict[str, Tenant], users: dict) -> int:
        new = 0
        for spec in world.DEMO_USERS:
            user = users[spec.username]
            for slug, role in spec.memberships:
                _, created = Membership.objects.get_or_create(
                    user=user, tenant=tenants[slug], defaults={"role": role}
                )
                new += created
            for slug in spec.reviews:
                _, created = ReviewerAssignment.objects.get_or_create(
                    reviewer=user, tenant=tenants[slug]
                )
                new += created
        return new

    def _platform(self, tenants: dict[str, Tenant], casts) -> int:
        """Spend caps, the last weeks' activity pipelines and their LLM calls."""
        from django.conf import settings

        new_caps = 0
        for plan, usd in demo_platform.PLAN_SPEND_CAPS.items():
            new_caps += SpendCap.objects.get_or_create(plan=plan, defaults={"monthly_usd": usd})[1]
        for slug, usd in demo_platform.TENANT_SPEND_CAPS.items():
            new_caps += SpendCap.objects.get_or_create(
                tenant=tenants[slug], defaults={"monthly_usd": usd}
            )[1]
        self.stdout.write(f"Spend caps: {new_caps} new")
        rows, calls = demo_platform.generate_platform_demo(casts=casts, now=datetime.now(UTC))
        self.stdout.write(f"Activity pipelines of the last {demo_platform.PLATFORM_DAYS} days:")
        inserted = self._entries(rows)
        if settings.LLM_CALLS_DB_ALIAS != "default":
            self.stdout.write(
                "LLM calls: read from the platform's database (LLM_CALLS_DATABASE_URL); "
                "no demo calls written there."
            )
            return inserted
        markers = list(dict.fromkeys(c.trace_id for c in calls))[:MARKER_TRACES]
        if LlmCall.objects.filter(trace_id__in=markers).exists():
            self.stdout.write("Demo LLM calls are already there; none added.")
            return inserted
        with transaction.atomic(using=router.db_for_write(LlmCall)):
            LlmCall.objects.bulk_create(
                [LlmCall(**c.model_values()) for c in calls], batch_size=1000
            )
        cost = sum(c.cost_usd for c in calls)
        self.stdout.write(f"LLM calls: {len(calls):,} inserted (${cost:,.2f})")
        return inserted

    def _entries(self, rows: list[dict]) -> int:
        alias = router.db_for_write(AuditLog)
        markers = list(dict.fromkeys(r["trace_id"] for r in rows))[:MARKER_TRACES]
        if AuditLog.objects.using(alias).filter(trace_id__in=markers).exists():
            self.stdout.write("Demo audit entries are already there; none added.")
            return 0
        batch = 1000
        mongo_store = MongoStore(alias) if connections[alias].vendor == "mongodb" else None
        # One transaction: either all demo entries are stored or none (so the
        # marker check above never sees a half-loaded demo).
        with transaction.atomic(using=alias):
            for start in range(0, len(rows), batch):
                if mongo_store is not None:
                    # No ignore_conflicts on MongoDB: the store skips duplicate ids.
                    mongo_store.write(rows[start : start + batch])
                else:
                    AuditLog.objects.using(alias).bulk_create(
                        [AuditLog(**model_values(row)) for row in rows[start : start + batch]],
                        ignore_conflicts=True,
                    )
                done = min(start + batch, len(rows))
                self.stdout.write(f"  {done:,}/{len(rows):,} entries")
        by_type = Counter(r["actor_type"] for r in rows)
        platform = sum(1 for r in rows if r["tenant_id"] is None)
        self.stdout.write(
            f"Inserted {len(rows):,} entries: "
            + ", ".join(f"{n:,} {t}" for t, n in sorted(by_type.items()))
            + f"; {platform:,} platform-level"
        )
        return len(rows)
