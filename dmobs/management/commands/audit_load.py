"""``audit_load --rows N [--tenants T]``: bulk-generate audit entries for benchmarks.

The generation is ``dmobs.demo.load`` (rows made in Python, any store) and
``dmobs.demo.pgload`` (rows made by PostgreSQL); this command parses the
arguments, creates the load tenants and reports progress.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction

from dmobs.demo.load import (
    FIELDS,
    LOAD_COMPANIES,
    LOAD_REVIEWER,
    LOAD_SUFFIXES,
    MAX_ROWS,
    MAX_TENANTS,
    REVIEWER_TENANTS,
    Progress,
    _executemany_batch,
    _orm_batch,
    build_plan,
    generate_rows,
)
from dmobs.demo.pgload import (
    INDEX_SETTINGS,
    LOAD_SETTINGS,
    PARALLEL_MIN_ROWS,
    POOL_TABLE,
    _apply_settings,
    _create_indexes,
    _estimated_rows,
    _mongodb_batch,
    _parallel_insert,
    _secondary_indexes,
    prepare_pool,
    run_slice,
    server_plan,
    slice_sql,
)
from dmobs.models import AuditLog, ReviewerAssignment, Tenant, User


# --- The command ---------------------------------------------------------------
class Command(BaseCommand):
    help = (
        "Bulk-generate N realistic audit entries for benchmarks: one tenant ~30% of the "
        "rows, a zipf tail over the others, ~2% platform-level, dates over two years."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, required=True, help="How many entries to add.")
        parser.add_argument(
            "--tenants",
            type=int,
            default=50,
            help="Spread the rows over this many tenants load-001.. (default 50; "
            "created when missing).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Rows per COPY/INSERT batch (default 100,000 on PostgreSQL, 5,000 elsewhere).",
        )
        parser.add_argument(
            "--days", type=int, default=730, help="Spread over this many days until now (730)."
        )
        parser.add_argument(
            "--seed", type=int, default=2026, help="Seed of the content generator (2026)."
        )
        parser.add_argument(
            "--indexes",
            choices=("auto", "keep", "rebuild"),
            default="auto",
            help="PostgreSQL only. 'rebuild' drops the secondary indexes of audit_logs, loads "
            "and recreates them (the list screens are slow meanwhile; a small load does all of "
            "it in one transaction, a parallel one recreates the indexes even when it fails). "
            "'keep' loads into the indexed table. 'auto' (default) rebuilds when the load at "
            "least doubles the table and is 100,000 rows or more.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="PostgreSQL only: connections that generate and insert rows at once, and "
            "that rebuild indexes at once (default 2). Used when the load is 200,000 rows or "
            "more and not inside a transaction; else one connection.",
        )

    def handle(self, *args, rows, tenants, batch_size, days, seed, indexes, workers, **options):
        verbosity = options.get("verbosity", 1)
        if rows < 1:
            raise CommandError(f"--rows must be a positive number, got {rows}")
        if rows > MAX_ROWS:
            raise CommandError(f"--rows must be at most {MAX_ROWS:,}, got {rows:,}")
        if not 1 <= tenants <= MAX_TENANTS:
            raise CommandError(f"--tenants must be between 1 and {MAX_TENANTS}, got {tenants}")
        if batch_size is not None and not 1 <= batch_size <= 10_000_000:
            raise CommandError(f"--batch-size must be between 1 and 10,000,000, got {batch_size}")
        if not 1 <= workers <= 16:
            raise CommandError(f"--workers must be between 1 and 16, got {workers}")
        if not 1 <= days <= 36_500:
            raise CommandError(f"--days must be between 1 and 36,500, got {days}")

        alias = router.db_for_write(AuditLog)
        connection = connections[alias]
        vendor = connection.vendor
        batch_size = batch_size or (100_000 if vendor == "postgresql" else 5_000)

        if verbosity:
            self.stdout.write(
                f"Loading {rows:,} entries into {alias} ({vendor}) over {tenants} tenant(s), "
                f"batches of {batch_size:,} ..."
            )
        # The rate counts everything the command does, building the content too.
        started = time.perf_counter()
        load_tenants = self._tenants(tenants)
        self._reviewer(load_tenants)
        plan = build_plan(load_tenants, seed=seed)
        now = datetime.now(UTC)
        start = (now - timedelta(days=days)).timestamp()
        # Leave a second of headroom so no row lands after "now".
        span = now.timestamp() - start - 1
        columns = [AuditLog._meta.get_field(name).column for name in FIELDS]
        table = AuditLog._meta.db_table
        progress = Progress(rows, enabled=verbosity > 0)
        extra = ""
        if vendor == "postgresql":
            gen = dict(plan=plan, rows=rows, start=start, span=span, seed=seed)
            done, extra = self._load_postgresql(
                alias, table, columns, gen, batch_size, indexes, workers, progress
            )
        else:
            row_iter = generate_rows(plan, rows=rows, start=start, span=span, seed=seed)
            write_batch = {"sqlite": _executemany_batch, "mongodb": _mongodb_batch}.get(
                vendor, _orm_batch
            )
            done = 0
            while done < rows:
                written = write_batch(alias, columns, row_iter, min(batch_size, rows - done))
                if not written:
                    break
                done += written
                progress.update(done)
        elapsed = time.perf_counter() - started
        if done != rows:
            raise CommandError(f"Generated only {done:,} of {rows:,} rows")
        if verbosity:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Inserted {done:,} entries in {elapsed:.1f} s: "
                    f"{done / elapsed:,.0f} rows/s{extra}"
                )
            )

    def _load_postgresql(
        self, alias, table, columns, gen, batch_size, indexes, workers, progress
    ) -> tuple[int, str]:
        """Generate the rows on the server (see slice_sql()), over several
        connections when the load is big.

        1. Decide whether to drop and rebuild the secondary indexes (a big load
           into a small table) or to maintain them while loading.
        2. Parallel: ``workers`` connections each take slices of the rows, a
           transaction per slice. Rebuilt indexes are dropped (committed) first
           and recreated over ``workers`` connections at the end, also when the
           load fails. In process (small loads, or inside a transaction, e.g.
           tests): Django's connection, and a rebuild is all-or-nothing in one
           transaction.
        3. VACUUM ANALYZE (ANALYZE inside a transaction), so the planner knows
           the new size and index-only scans need no heap.
        """
        connection = connections[alias]
        rows = gen["rows"]
        quoted_table = connection.ops.quote_name(table)
        with connection.cursor() as cursor:
            existing = _estimated_rows(cursor, quoted_table)
        rebuild = indexes == "rebuild" or (
            indexes == "auto" and rows >= 100_000 and rows >= existing
        )
        parallel = workers > 1 and rows >= PARALLEL_MIN_ROWS and not connection.in_atomic_block
        plan = server_plan(gen["plan"])
        sql = slice_sql(quoted_table, plan)
        load = {
            "rows": rows,
            "start": gen["start"],
            "span": gen["span"],
            "seed": gen["seed"],
            "middle": os.urandom(5).hex(),
        }
        slices = [(a, min(a + batch_size, rows)) for a in range(0, rows, batch_size)]
        done = 0
        index_seconds = 0.0
        insert_started = time.perf_counter()
        if parallel:
            definitions = []
            if rebuild:
                with transaction.atomic(using=alias), connection.cursor() as cursor:
                    definitions = _secondary_indexes(cursor, quoted_table)
                    for name, _ in definitions:
                        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
            try:
                done = _parallel_insert(
                    connection.settings_dict, quoted_table, plan, sql, load, slices, workers,
                    progress,
                )  # fmt: skip
            except psycopg.Error as exc:  # raised on the workers' own connections
                raise CommandError(
                    f"Loading failed after {progress.done:,} rows (committed slices stay): {exc}"
                ) from exc
            finally:
                insert_seconds = time.perf_counter() - insert_started
                if definitions:
                    self.stderr.write(
                        f"Recreating {len(definitions)} indexes over {workers} connections ..."
                    )
                    index_started = time.perf_counter()
                    _create_indexes(
                        connection.settings_dict,
                        definitions,
                        workers,
                        self._index_built(definitions),
                    )
                    index_seconds = time.perf_counter() - index_started
        else:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                # Dropping, loading and recreating in one transaction: cheaper than
                # maintaining the indexes row by row, and all-or-nothing.
                _apply_settings(cursor, {**LOAD_SETTINGS, **INDEX_SETTINGS}, local=True)
                definitions = _secondary_indexes(cursor, quoted_table) if rebuild else []
                for name, _ in definitions:
                    cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
                prepare_pool(cursor, quoted_table, plan)
                for first, stop in slices:
                    done += run_slice(cursor, sql, load, first, stop, plan.min_len)
                    progress.update(done)
                cursor.execute(f"DROP TABLE pg_temp.{POOL_TABLE}")
                insert_seconds = time.perf_counter() - insert_started
                if definitions:
                    self.stderr.write(f"Recreating {len(definitions)} indexes ...")
                    index_started = time.perf_counter()
                    built = self._index_built(definitions)
                    for name, definition in definitions:
                        started = time.perf_counter()
                        cursor.execute(definition)
                        built(name, time.perf_counter() - started)
                    index_seconds = time.perf_counter() - index_started
        analyze_started = time.perf_counter()
        # VACUUM too, where it can run (not inside a transaction): it sets the
        # visibility map autovacuum would set on an insert-only table soon after,
        # so index-only scans (the capped counts) read no heap pages.
        analyze = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            cursor.execute(f"{analyze} {quoted_table}")
        analyze_seconds = time.perf_counter() - analyze_started
        how = f"{workers} connections" if parallel else "1 connection"
        detail = (
            f" (generated and inserted over {how} in {insert_seconds:.1f} s: "
            f"{done / max(insert_seconds, 1e-9):,.0f} rows/s"
        )
        if rebuild:
            detail += f"; {len(definitions)} indexes rebuilt in {index_seconds:.1f} s"
        detail += f"; {analyze.replace(' (ANALYZE)', ' ANALYZE')} {analyze_seconds:.1f} s)"
        return done, detail

    def _index_built(self, definitions: list[tuple[str, str]]) -> Callable[[str, float], None]:
        """A progress line per rebuilt index (builds of a big load take minutes)."""
        lock = threading.Lock()
        count = [0]

        def built(name: str, seconds: float) -> None:
            with lock:
                count[0] += 1
                self.stderr.write(
                    f"  [{count[0]}/{len(definitions)}] {name} built in {seconds:.1f} s"
                )

        return built

    def _reviewer(self, tenants: list[Tenant]) -> None:
        """``load_reviewer``: a DM reviewer of the first REVIEWER_TENANTS load tenants
        (all of them when there are fewer), for the Portal's many-tenant paths
        (its list, and an export that merges one index walk per tenant).
        No password: benchmarks sign it in with a session of their own."""
        reviewer, created = User.objects.get_or_create(
            username=LOAD_REVIEWER, defaults={"first_name": "Load", "last_name": "Reviewer"}
        )
        if created:
            reviewer.set_unusable_password()
            reviewer.save(update_fields=["password"])
        ReviewerAssignment.objects.bulk_create(
            [ReviewerAssignment(reviewer=reviewer, tenant=t) for t in tenants[:REVIEWER_TENANTS]],
            ignore_conflicts=True,
        )

    def _tenants(self, count: int) -> list[Tenant]:
        """Tenants load-001 .. load-NNN, created when missing (by slug, so idempotent)."""
        slugs = [f"load-{i:03d}" for i in range(1, count + 1)]
        existing = set(Tenant.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        plans = ("enterprise", "pro", "pro", "starter", "starter", "starter", "free")
        missing = [
            Tenant(
                slug=slug,
                name=f"{LOAD_COMPANIES[i % len(LOAD_COMPANIES)]} "
                f"{LOAD_SUFFIXES[i // len(LOAD_COMPANIES) % len(LOAD_SUFFIXES)]} ({slug})",
                plan=plans[min(i, len(plans) - 1)] if i < 3 else plans[i % len(plans)],
            )
            for i, slug in enumerate(slugs)
            if slug not in existing
        ]
        if missing:
            Tenant.objects.bulk_create(missing, ignore_conflicts=True, batch_size=1000)
        by_slug = {t.slug: t for t in Tenant.objects.filter(slug__in=slugs)}
        return [by_slug[slug] for slug in slugs]
