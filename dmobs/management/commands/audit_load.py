"""Bulk-generate audit entries for benchmarks: ``audit_load --rows N [--tenants T]``.

The rows read like the demo data (they come from the same ``EventFactory``)
and are skewed like production: one tenant gets about 30% of the rows, the
other tenants a zipf-like tail, about 2% are platform-level; dates spread over
two years until now, with the volume growing over time.

Speed comes from doing per-row work only where it has to be per row:

1. Per tenant, a pool of scenarios (one request or agent run, one or more
   rows) is built once, with before/after already serialised to JSON.
2. Per row: pick a scenario, stamp it with an id, a trace id (shared by the
   rows of one scenario) and a time. Rows are generated in time order, so the
   indexes on (…, created_at, id) grow at their right edge.
3. On PostgreSQL the rows are streamed with ``COPY ... FROM STDIN``
   (psycopg 3, one transaction per batch); elsewhere they are inserted in
   batches with ``executemany`` / ``bulk_create``.

Ids are ObjectIds: 4 bytes of ``created_at`` seconds, 5 random bytes per run
and a 3-byte row counter, so they are unique and sort like ``created_at``.
"""

from __future__ import annotations

import bisect
import json
import math
import multiprocessing
import os
import random
import sys
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction

from dmobs import demo
from dmobs.models import AuditLog, Tenant
from dmobs.mongo import MongoStore
from dmobs.records import FIELDS as RECORD_FIELDS

# The order of the values in a generated row: AuditLog field names, in the
# stored-record order of dmobs.records.
FIELDS = tuple(name for name, _stored in RECORD_FIELDS)
BIG_TENANT_SHARE = 0.30
PLATFORM_SHARE = 0.02
ZIPF_EXPONENT = 1.0
MAX_ROWS = 1_000_000_000
MAX_TENANTS = 9_999
LOAD_COMPANIES = (
    "Northwind", "Blue Harbor", "Brightwave", "Copperleaf", "Driftwood", "Evergreen",
    "Foxglove", "Granite Peak", "Helios", "Ironbridge", "Juniper", "Kestrel", "Lumen",
    "Meridian", "Nimbus", "Oakline", "Pinecrest", "Quartz", "Redwood", "Silverline",
)  # fmt: skip
LOAD_SUFFIXES = ("Media", "Labs", "Logistics", "Health", "Foods", "Studios", "Energy", "Retail")


# --- Progress ----------------------------------------------------------------
class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10% elsewhere."""

    def __init__(self, total: int, *, stream=None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self._last_draw < 0.2 and done < self.total:
                return
            self._last_draw = now
            self.stream.write("\r" + self._line(done, now))
            if done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            decile = done * 10 // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line(done, now) + "\n")
                self.stream.flush()

    def _line(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        width = 30
        filled = width * done // self.total
        eta = (self.total - done) / rate if rate else 0
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {done:>12,}/{self.total:,} rows "
            f"{done * 100 // self.total:3d}%  {rate:>10,.0f} rows/s  ETA {eta:5.0f} s"
        )


# --- Row plan ----------------------------------------------------------------
@dataclass
class LoadPlan:
    """What the row generator draws from: per tenant (last: platform) a pool of
    scenarios, and cumulative pick weights per scenario."""

    pools: list[list[tuple[tuple, ...]]]
    cum_weights: list[float]
    tenant_ids: list[str | None]
    shares: list[float]


def tenant_shares(tenants: int) -> list[float]:
    """Row shares: the first tenant ~30%, a zipf tail over the rest, 2% platform (last)."""
    if tenants == 1:
        return [1 - PLATFORM_SHARE, PLATFORM_SHARE]
    tail = [1 / (k**ZIPF_EXPONENT) for k in range(1, tenants)]
    tail_total = sum(tail)
    rest = 1 - BIG_TENANT_SHARE - PLATFORM_SHARE
    return [BIG_TENANT_SHARE] + [rest * w / tail_total for w in tail] + [PLATFORM_SHARE]


def _person(rng: random.Random) -> demo.Actor:
    name = f"{rng.choice(demo.FIRST_NAMES)} {rng.choice(demo.LAST_NAMES)}"
    return demo.Actor("human", format(rng.getrandbits(96), "024x"), name)


def _content(event: demo.Event, tenant_id: str | None) -> tuple:
    """The row values between id and trace id, JSON serialised once."""
    return (
        tenant_id,
        event.actor.type,
        event.actor.id,
        event.actor.name,
        event.action,
        event.resource_type,
        event.resource_id,
        event.resource_name,
        event.description,
        None if event.before is None else json.dumps(event.before, separators=(",", ":")),
        None if event.after is None else json.dumps(event.after, separators=(",", ":")),
    )


def build_plan(tenants: list[Tenant], *, seed: int) -> LoadPlan:
    """Casts and scenario pools for the load tenants (see the module docstring)."""
    rng = random.Random(seed)
    factory = demo.EventFactory(rng)
    shares = tenant_shares(len(tenants))
    reviewers = [_person(rng) for _ in range(8)]
    staff = [_person(rng) for _ in range(4)]
    casts = []
    for tenant, share in zip(tenants, shares, strict=False):
        # Bigger tenants have more people: ~30 at the top, at least 2.
        people = [_person(rng) for _ in range(max(2, round(30 * share / BIG_TENANT_SHARE)))]
        admins = max(1, len(people) // 5)
        casts.append(
            demo.Cast(
                tenant.ref_id,
                tenant.name,
                tenant.plan,
                admins=people[:admins],
                members=people[admins:],
                reviewers=rng.sample(reviewers, 2),
                agents=demo.agents_for(tenant.slug),
            )
        )
    pools: list[list[tuple[tuple, ...]]] = []
    weights: list[float] = []
    for cast, share in zip(casts, shares, strict=False):
        size = max(150, round(4000 * share / BIG_TENANT_SHARE))
        pool = []
        for _ in range(size):
            events = factory.tenant_scenario(cast)
            pool.append(tuple(_content(e, cast.tenant_id) for e in events))
        pools.append(pool)
        weights.append(share)
    platform_pool = []
    for _ in range(400):
        events = factory.platform(staff, casts, reviewers)
        platform_pool.append(tuple(_content(e, e.tenant_id) for e in events))
    pools.append(platform_pool)
    weights.append(shares[-1])
    # Pick scenarios so that *rows* follow the shares: divide by the mean scenario length.
    per_pick = [
        w / (sum(len(g) for g in pool) / len(pool)) for w, pool in zip(weights, pools, strict=True)
    ]
    total = sum(per_pick)
    cum, acc = [], 0.0
    for w in per_pick:
        acc += w / total
        cum.append(acc)
    cum[-1] = 1.0
    return LoadPlan(pools, cum, [t.ref_id for t in tenants] + [None], shares)


def _copy_text(value: str | None) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_text_pools(plan: LoadPlan) -> list[list[tuple[str, ...]]]:
    """The plan's pools with each content already escaped and joined for COPY."""
    return [
        [tuple("\t".join(_copy_text(v) for v in content) for content in group) for group in pool]
        for pool in plan.pools
    ]


def generate_rows(
    plan: LoadPlan,
    *,
    rows: int,
    start: float,
    span: float,
    seed: int,
    pools: list | None = None,
    as_copy_text: bool = False,
    first: int = 0,
    stop: int | None = None,
    middle: str | None = None,
) -> Iterator:
    """Rows ``first`` .. ``stop - 1`` of ``rows``, in time order, ``created_at`` in
    [start, start + span).

    Yields tuples of values in FIELDS order, or with ``as_copy_text`` one COPY text
    line per row (``pools`` from ``copy_text_pools()``). A slice [first, stop) is
    generated on its own (own random stream), so worker processes can each make
    a part of one load.

    Row i sits at fraction p = (i + u) / rows of the index range, mapped to time by
    (p + sqrt(p)) / 2: monotonic, and about four times as many rows at the end of
    the range as at its start (the platform grew).
    """
    stop = rows if stop is None else min(stop, rows)
    rnd = random.Random(f"{seed}:{first}")
    rand = rnd.random
    bits = rnd.getrandbits
    pools = pools or plan.pools
    cum = plan.cum_weights
    pick = bisect.bisect_right
    sqrt = math.sqrt
    fromts = datetime.fromtimestamp
    utc = UTC
    # Unique per run: ids of two runs never collide. Workers share it (rows differ by i).
    middle = middle or os.urandom(5).hex()
    # COPY text of created_at without a datetime per row: the day's prefix is
    # cached (rows come in time order) and the time of day comes from a table.
    clock = _CLOCK if as_copy_text else ()
    day_start, day_prefix = -1, ""
    i = first
    while i < stop:
        pool = pools[pick(cum, rand())]
        group = pool[int(rand() * len(pool))]
        trace_id = f"{bits(128) or 1:032x}"
        for content in group:
            if i >= stop:
                return
            t = start + span * ((p := (i + rand()) / rows) + sqrt(p)) * 0.5
            seconds = int(t)
            row_id = f"{seconds:08x}{middle}{i & 0xFFFFFF:06x}"
            if as_copy_text:
                if not 0 <= seconds - day_start < 86400:
                    day_start = seconds - seconds % 86400
                    day_prefix = fromts(day_start, utc).strftime("%Y-%m-%d ")
                micros = int((t - seconds) * 1_000_000)
                yield (
                    f"{row_id}\t{content}\t{trace_id}\t{day_prefix}"
                    f"{clock[seconds - day_start]}.{micros:06d}+00\n"
                )
            else:
                yield (row_id,) + content + (trace_id, fromts(t, utc))
            i += 1


# "HH:MM:SS" for every second of a day.
_CLOCK = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))


# --- Writers -----------------------------------------------------------------
COPY_CHUNK_ROWS = 2000


def _copy_batch(alias: str, columns: list[str], lines: Iterator[str], count: int) -> int:
    """COPY ``count`` pre-rendered text lines in the current transaction."""
    connection = connections[alias]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    written = 0
    connection.ensure_connection()
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy,
    ):
        while written < count:
            chunk = list(islice(lines, min(COPY_CHUNK_ROWS, count - written)))
            if not chunk:
                break
            copy.write("".join(chunk))
            written += len(chunk)
    return written


def _executemany_batch(alias: str, columns: list[str], rows: Iterator[tuple], count: int) -> int:
    connection = connections[alias]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    sql = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join(['%s'] * len(columns))})"
    adapt = connection.ops.adapt_datetimefield_value
    batch = [row[:-1] + (adapt(row[-1]),) for row in islice(rows, count)]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.executemany(sql, batch)
    return len(batch)


def _orm_batch(alias: str, columns: list[str], rows: Iterator[tuple], count: int) -> int:
    objs = []
    for row in islice(rows, count):
        values = dict(zip(FIELDS, row, strict=True))
        for key in ("before", "after"):
            if values[key] is not None:
                values[key] = json.loads(values[key])
        objs.append(AuditLog(**values))
    AuditLog.objects.using(alias).bulk_create(objs, ignore_conflicts=True)
    return len(objs)


# --- PostgreSQL: parallel COPY ---------------------------------------------------
def _connect(settings_dict: dict):
    """A plain psycopg connection to the database of a Django alias (no Django state,
    so it is safe in a forked worker)."""
    import psycopg

    return psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or None,
        port=settings_dict.get("PORT") or None,
    )


@dataclass
class CopyJob:
    """What every worker needs; inherited by the forked workers, never pickled."""

    settings_dict: dict
    copy_sql: str
    plan: LoadPlan
    pools: list
    rows: int
    start: float
    span: float
    seed: int
    middle: str
    slices: list[tuple[int, int]]


def _copy_worker(job: CopyJob, worker: int, workers: int, counter) -> None:
    """One worker process: generate its slices of the rows and COPY each slice in a
    transaction of its own. Generation (Python) and parsing (the server backend)
    of two workers overlap on two cores."""
    try:
        with _connect(job.settings_dict) as conn:
            # Benchmark data: losing the last slices in a server crash is fine.
            conn.execute("SET synchronous_commit = off")
            conn.commit()
            for first, stop in job.slices[worker::workers]:
                lines = generate_rows(
                    job.plan,
                    rows=job.rows,
                    start=job.start,
                    span=job.span,
                    seed=job.seed,
                    pools=job.pools,
                    as_copy_text=True,
                    first=first,
                    stop=stop,
                    middle=job.middle,
                )
                with conn.cursor() as cursor, cursor.copy(job.copy_sql) as copy:
                    while chunk := list(islice(lines, COPY_CHUNK_ROWS)):
                        copy.write("".join(chunk))
                        with counter.get_lock():
                            counter.value += len(chunk)
                conn.commit()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def _parallel_copy(job: CopyJob, workers: int, progress: Progress) -> int:
    """Run ``workers`` forked COPY workers; returns the rows they wrote."""
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    processes = [
        context.Process(target=_copy_worker, args=(job, k, workers, counter), daemon=True)
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            time.sleep(0.2)
            progress.update(min(counter.value, job.rows - 1))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise CommandError(f"{len(failed)} COPY worker(s) failed (exit codes {failed}); see above")
    progress.update(counter.value)
    return counter.value


def _create_indexes(settings_dict: dict, definitions: list[str], workers: int) -> None:
    """CREATE INDEX statements over ``workers`` connections at once (each build is
    a sort on one core), with the session's maintenance_work_mem raised."""

    def build(definition: str) -> None:
        with _connect(settings_dict) as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute("SET max_parallel_maintenance_workers = 0")
            conn.execute(definition)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # Biggest first would be better, but the definitions carry no size: list order.
        list(pool.map(build, definitions))


def _mongodb_batch(alias: str, columns: list[str], rows: Iterator[tuple], count: int) -> int:
    """Unordered insert_many through the writer's MongoDB store (duplicates skipped)."""
    entries = []
    for row in islice(rows, count):
        values = dict(zip(FIELDS, row, strict=True))
        for key in ("before", "after"):
            if values[key] is not None:
                values[key] = json.loads(values[key])
        entries.append(values)
    return MongoStore(alias, batch_size=5_000).write(entries)


# --- PostgreSQL: secondary indexes ------------------------------------------------
def _secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname
        """,
        [table],
    )
    return list(cursor.fetchall())


def _estimated_rows(cursor, table: str) -> int:
    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
    (estimate,) = cursor.fetchone()
    return max(0, estimate or 0)


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
            "and recreates them, all in one transaction (the table is locked meanwhile; an "
            "interrupted load rolls back completely). 'keep' loads into the indexed table and "
            "commits each batch. 'auto' (default) rebuilds when the load at least doubles "
            "the table and is 100,000 rows or more.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="PostgreSQL only: processes that generate and COPY rows at once, and "
            "connections that rebuild indexes at once (default 2). Used when the load is "
            "200,000 rows or more and not inside a transaction; else one connection.",
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

        load_tenants = self._tenants(tenants)
        plan = build_plan(load_tenants, seed=seed)
        now = datetime.now(UTC)
        start = (now - timedelta(days=days)).timestamp()
        # Leave a second of headroom so no row lands after "now".
        span = now.timestamp() - start - 1
        columns = [AuditLog._meta.get_field(name).column for name in FIELDS]
        table = AuditLog._meta.db_table

        if verbosity:
            self.stdout.write(
                f"Loading {rows:,} entries into {alias} ({vendor}) over {tenants} tenant(s), "
                f"batches of {batch_size:,} ..."
            )
        progress = Progress(rows, enabled=verbosity > 0)
        started = time.perf_counter()
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
        """COPY the rows, in parallel worker processes when the load is big.

        1. Decide whether to drop and rebuild the secondary indexes (a big load
           into a small table) or to maintain them while loading.
        2. Parallel: each worker process generates its slices of the rows and
           COPYs them over a connection of its own, a transaction per slice.
           Rebuilt indexes are dropped (committed) first and recreated over
           ``workers`` connections at the end, also when the load fails. In
           process (small loads, or inside a transaction, e.g. tests): one
           connection, and a rebuild is all-or-nothing in one transaction.
        3. ANALYZE, so the planner knows the new size.
        """
        connection = connections[alias]
        rows = gen["rows"]
        quoted_table = connection.ops.quote_name(table)
        quoted_columns = ", ".join(connection.ops.quote_name(c) for c in columns)
        copy_sql = f"COPY {quoted_table} ({quoted_columns}) FROM STDIN"
        with connection.cursor() as cursor:
            existing = _estimated_rows(cursor, quoted_table)
        rebuild = indexes == "rebuild" or (
            indexes == "auto" and rows >= 100_000 and rows >= existing
        )
        parallel = workers > 1 and rows >= 200_000 and not connection.in_atomic_block
        pools = copy_text_pools(gen["plan"])
        done = 0
        index_seconds = 0.0
        copy_started = time.perf_counter()
        if parallel:
            slices = [(a, min(a + batch_size, rows)) for a in range(0, rows, batch_size)]
            job = CopyJob(
                settings_dict=connection.settings_dict,
                copy_sql=copy_sql,
                pools=pools,
                middle=os.urandom(5).hex(),
                slices=slices,
                **gen,
            )
            definitions = []
            if rebuild:
                with transaction.atomic(using=alias), connection.cursor() as cursor:
                    definitions = _secondary_indexes(cursor, quoted_table)
                    for name, _ in definitions:
                        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
            # Forked workers must not share this process's connection.
            connections.close_all()
            try:
                done = _parallel_copy(job, workers, progress)
            finally:
                copy_seconds = time.perf_counter() - copy_started
                if definitions:
                    self.stderr.write(
                        f"Recreating {len(definitions)} indexes over {workers} connections ..."
                    )
                    index_started = time.perf_counter()
                    _create_indexes(connection.settings_dict, [d for _, d in definitions], workers)
                    index_seconds = time.perf_counter() - index_started
        else:
            lines = generate_rows(pools=pools, as_copy_text=True, **gen)
            if rebuild:
                # Dropping, loading and recreating in one transaction: cheaper than
                # maintaining the indexes row by row, and all-or-nothing.
                with transaction.atomic(using=alias), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
                    definitions = _secondary_indexes(cursor, quoted_table)
                    for name, _ in definitions:
                        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
                    while done < rows:
                        done += _copy_batch(alias, columns, lines, min(batch_size, rows - done))
                        progress.update(done)
                    copy_seconds = time.perf_counter() - copy_started
                    self.stderr.write(f"Recreating {len(definitions)} indexes ...")
                    index_started = time.perf_counter()
                    for _, definition in definitions:
                        cursor.execute(definition)
                    index_seconds = time.perf_counter() - index_started
            else:
                while done < rows:
                    with transaction.atomic(using=alias):
                        with connection.cursor() as cursor:
                            # Losing the last batch in a crash is fine for benchmark data.
                            cursor.execute("SET LOCAL synchronous_commit = off")
                        done += _copy_batch(alias, columns, lines, min(batch_size, rows - done))
                    progress.update(done)
                copy_seconds = time.perf_counter() - copy_started
        analyze_started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {quoted_table}")
        analyze_seconds = time.perf_counter() - analyze_started
        how = f"{workers} workers" if parallel else "1 connection"
        detail = (
            f" (COPY over {how} {copy_seconds:.1f} s, {done / max(copy_seconds, 1e-9):,.0f} rows/s"
        )
        if rebuild:
            detail += f"; indexes rebuilt in {index_seconds:.1f} s"
        detail += f"; ANALYZE {analyze_seconds:.1f} s)"
        return done, detail

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
