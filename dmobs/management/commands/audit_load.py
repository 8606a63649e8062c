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
3. On PostgreSQL no row is made in Python or crosses the wire: the pool is
   COPYed into a temporary table once per connection and every slice of the
   load is one ``INSERT ... SELECT`` that does step 2 on the server (see
   ``slice_sql()``), over 2 connections at once for big loads. Elsewhere
   Python makes the rows and inserts them in batches (``executemany`` /
   ``bulk_create`` / ``insert_many``).

Ids are ObjectIds: 4 bytes of ``created_at`` seconds, 5 random bytes per run
and a 3-byte row counter, so they are unique and sort like ``created_at``.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction

from dmobs import demo
from dmobs.audit.stores.mongo import MongoStore
from dmobs.models import AuditLog, ReviewerAssignment, Tenant, User
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
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
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


def generate_rows(plan: LoadPlan, *, rows: int, start: float, span: float, seed: int) -> Iterator:
    """``rows`` rows in time order, ``created_at`` in [start, start + span), as tuples
    of values in FIELDS order (SQLite and MongoDB; PostgreSQL generates the same
    rows on the server, see slice_sql()).

    Row i sits at fraction p = (i + u) / rows of the index range, mapped to time by
    (p + sqrt(p)) / 2: monotonic, and about four times as many rows at the end of
    the range as at its start (the platform grew).
    """
    rnd = random.Random(seed)
    rand = rnd.random
    bits = rnd.getrandbits
    cum = plan.cum_weights
    pick = bisect.bisect_right
    sqrt = math.sqrt
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    micro = timedelta(microseconds=1)
    # Unique per run: ids of two runs never collide.
    middle = os.urandom(5).hex()
    i = 0
    while i < rows:
        pool = plan.pools[pick(cum, rand())]
        group = pool[int(rand() * len(pool))]
        trace_id = f"{bits(128) or 1:032x}"
        for content in group:
            if i >= rows:
                return
            t = start + span * ((p := (i + rand()) / rows) + sqrt(p)) * 0.5
            # Whole microseconds, so the id's second is created_at's second.
            micros = int(t * 1_000_000)
            row_id = f"{micros // 1_000_000:08x}{middle}{i & 0xFFFFFF:06x}"
            yield (row_id,) + content + (trace_id, epoch + micros * micro)
            i += 1


# --- Writers -----------------------------------------------------------------
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


# --- PostgreSQL: rows generated by the server ---------------------------------
# The pool's scenarios are COPYed once per connection into a temporary table;
# then each slice of the load is one INSERT ... SELECT that picks scenarios,
# expands them into rows and stamps ids, trace ids and times on the server.
# No row crosses the wire and no JSON is parsed per row: before/after are jsonb
# values copied from the pool. Python does per-slice work only.
POOL_TABLE = "dmobs_load_pool"
# Below this many rows one connection is as fast (each extra one COPYs the pool first).
PARALLEL_MIN_ROWS = 200_000
PICK_SLOTS = 65_536
CONTENT_COLUMNS = FIELDS[1:-2]  # tenant_id .. after: what a pool row holds


@dataclass
class ServerPlan:
    """The plan flattened into arrays the INSERT ... SELECT indexes (all 0-based
    values; PostgreSQL arrays are 1-based, the SQL adds 1).

    - ``slots``: PICK_SLOTS entries, each a pool number; a pool holds slots in
      proportion to its pick weight (at least one), so a uniform slot is a
      weighted pool pick.
    - ``pool_first`` / ``pool_size``: the pool's scenarios are numbered
      pool_first .. pool_first + pool_size - 1.
    - ``scenario_first`` / ``scenario_len``: a scenario's rows in the pool table.
    - ``lines``: the pool table's rows as COPY text (row number, then content).
    """

    slots: list[int]
    pool_first: list[int]
    pool_size: list[int]
    scenario_first: list[int]
    scenario_len: list[int]
    lines: list[str]

    @property
    def min_len(self) -> int:
        return min(self.scenario_len)


def pick_slots(cum_weights: list[float], slots: int = PICK_SLOTS) -> list[int]:
    """``slots`` pool numbers, each pool's count proportional to its weight
    (largest remainder, every pool at least one)."""
    weights = [b - a for a, b in zip([0.0, *cum_weights[:-1]], cum_weights, strict=True)]
    if len(weights) > slots:
        raise CommandError(f"At most {slots - 1} tenants can be loaded on PostgreSQL")
    exact = [w * slots for w in weights]
    counts = [max(1, int(x)) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda k: exact[k] - int(exact[k]), reverse=True)
    k = 0
    while sum(counts) < slots:
        counts[by_remainder[k % len(by_remainder)]] += 1
        k += 1
    while sum(counts) > slots:  # the minimum of one pushed the total over
        biggest = max(range(len(counts)), key=counts.__getitem__)
        counts[biggest] -= 1
    return [pool for pool, count in enumerate(counts) for _ in range(count)]


def server_plan(plan: LoadPlan) -> ServerPlan:
    pool_first, pool_size, scenario_first, scenario_len, lines = [], [], [], [], []
    for pool in copy_text_pools(plan):
        pool_first.append(len(scenario_first))
        pool_size.append(len(pool))
        for group in pool:
            first = len(lines)
            scenario_first.append(first)
            scenario_len.append(len(group))
            lines.extend(f"{first + k}\t{content}\n" for k, content in enumerate(group))
    return ServerPlan(
        pick_slots(plan.cum_weights), pool_first, pool_size, scenario_first, scenario_len, lines
    )


def _int_array(values: list[int]) -> str:
    """An int[] literal (inlined into the SQL, so the planner folds it to a constant
    once instead of evaluating a cast per row)."""
    return "'{" + ",".join(map(str, values)) + "}'::int[]"


def prepare_pool(cursor, table: str, plan: ServerPlan) -> None:
    """Create this connection's temporary pool table and COPY the pool into it."""
    quoted = ", ".join(f'"{AuditLog._meta.get_field(n).column}"' for n in CONTENT_COLUMNS)
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{POOL_TABLE}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {POOL_TABLE} AS SELECT 0 AS r, {quoted} FROM {table} LIMIT 0"
    )
    with cursor.copy(f"COPY {POOL_TABLE} (r, {quoted}) FROM STDIN") as copy:
        for k in range(0, len(plan.lines), 5000):
            copy.write("".join(plan.lines[k : k + 5000]))
    cursor.execute(f"ANALYZE {POOL_TABLE}")


def slice_sql(table: str, plan: ServerPlan) -> str:
    """The INSERT ... SELECT of one slice; parameters: first (row number of the
    slice's first row), count, groups (scenarios to draw: enough for count rows),
    rows (of the whole load), start, span, middle (ObjectId bytes 5-9 as hex),
    salt (makes trace ids unique per slice).

    Each step is a subquery behind OFFSET 0, so no volatile value (random())
    is evaluated twice by a flattened plan. In the plans PostgreSQL chooses the
    pool is the hashed side of the last join, so rows leave in generation order
    and ids reach the primary key in order. ``random()`` is seeded per slice
    (``run_slice``), so ``--seed`` makes the same picks and times. Times: row i
    sits at p = (i + u) / rows, mapped to start + span * (p + sqrt(p)) / 2 as in
    generate_rows(); the id's first 4 bytes are the same second.
    """
    stored = [AuditLog._meta.get_field(n).column for n in FIELDS]
    columns = ", ".join(f'"{c}"' for c in stored)
    content = ", ".join(f'p."{AuditLog._meta.get_field(n).column}"' for n in CONTENT_COLUMNS)
    slots = _int_array(plan.slots)
    return f"""
INSERT INTO {table} ({columns})
SELECT lpad(to_hex(t.micros / 1000000), 8, '0') || %(middle)s
       || lpad(to_hex(t.i & 16777215), 6, '0'),
       {content},
       t.trace,
       TIMESTAMPTZ 'epoch' + t.micros * INTERVAL '1 microsecond'
FROM (
    SELECT u.i, u.trace, u.r,
           floor((%(start)s + %(span)s * (u.p + sqrt(u.p)) * 0.5) * 1000000)::bigint AS micros
    FROM (
        SELECT n.i, n.trace, n.r, (n.i + random()) / %(rows)s AS p
        FROM (
            SELECT %(first)s - 1 + row_number() OVER () AS i, e.trace, e.r
            FROM (
                SELECT s.trace,
                       ({_int_array(plan.scenario_first)})[s.s + 1]
                       + generate_series(0, ({_int_array(plan.scenario_len)})[s.s + 1] - 1) AS r
                FROM (
                    SELECT md5(%(salt)s || j.g::text) AS trace,
                           ({_int_array(plan.pool_first)})[j.j + 1]
                           + floor(random() * ({_int_array(plan.pool_size)})[j.j + 1])::int AS s
                    FROM (
                        SELECT g, ({slots})[1 + floor(random() * {len(plan.slots)})::int] AS j
                        FROM generate_series(1, %(groups)s) AS g
                        OFFSET 0
                    ) AS j
                    OFFSET 0
                ) AS s
                OFFSET 0
            ) AS e
            LIMIT %(count)s
        ) AS n
        OFFSET 0
    ) AS u
    OFFSET 0
) AS t
JOIN pg_temp.{POOL_TABLE} AS p ON p.r = t.r
"""


def slice_params(load: dict, first: int, stop: int, min_len: int) -> dict:
    count = stop - first
    return {
        **load,
        "first": first,
        "count": count,
        # Enough scenarios for count rows even if every one were of the shortest length.
        "groups": -(-count // max(1, min_len)),
        "salt": f"{load['seed']}:{first}:",
    }


def run_slice(cursor, sql: str, load: dict, first: int, stop: int, min_len: int) -> int:
    """Insert rows ``first`` .. ``stop - 1``; returns how many were inserted."""
    # A seed in [-1, 1) of its own per slice, whichever connection runs it.
    seed = (load["seed"] * 1_000_003 + first) % 2_000_000 / 1_000_000 - 1
    cursor.execute("SELECT setseed(%s)", [seed])
    cursor.execute(sql, slice_params(load, first, stop, min_len))
    return cursor.rowcount


def _connect(settings_dict: dict):
    """A psycopg connection of its own to the database of a Django alias."""
    return psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or None,
        port=settings_dict.get("PORT") or None,
        cursor_factory=psycopg.ClientCursor,
    )


LOAD_SETTINGS = {
    # The pool table (tens of MB) is hashed once per slice: keep it in memory.
    "work_mem": "256MB",
    # Compiling the expressions costs more than it saves on one statement.
    "jit": "off",
    # Benchmark data: losing the last slices in a server crash is fine.
    "synchronous_commit": "off",
}
# Index builds sort the whole table: give each one memory for it.
INDEX_SETTINGS = {"maintenance_work_mem": "512MB"}


def _apply_settings(cursor, settings: dict[str, str], *, local: bool = False) -> None:
    """Set ``settings`` for the session, or with ``local`` for the transaction only."""
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, %s)", [name, value, local])


def _parallel_insert(settings_dict, table, plan, sql, load, slices, workers, progress) -> int:
    """INSERT the slices over ``workers`` connections at once, a transaction per
    slice; returns the rows written."""
    pending = list(reversed(slices))
    lock = threading.Lock()
    done = [0]

    def worker() -> None:
        try:
            with _connect(settings_dict) as conn, conn.cursor() as cursor:
                _apply_settings(cursor, LOAD_SETTINGS)
                prepare_pool(cursor, table, plan)
                conn.commit()
                while True:
                    with lock:
                        if not pending:
                            return
                        first, stop = pending.pop()
                    written = run_slice(cursor, sql, load, first, stop, plan.min_len)
                    conn.commit()
                    with lock:
                        done[0] += written
        except BaseException:
            with lock:
                pending.clear()  # the other connections stop after their slice
            raise

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        while not all(f.done() for f in futures):
            time.sleep(0.2)
            progress.update(min(done[0], load["rows"] - 1))
        for future in futures:
            future.result()  # re-raise a worker's error
    progress.update(done[0])
    return done[0]


def _create_indexes(
    settings_dict: dict,
    definitions: list[tuple[str, str]],
    workers: int,
    built: Callable[[str, float], None],
) -> None:
    """CREATE INDEX statements over ``workers`` connections at once (each build is
    a sort on one core), GIN indexes first (they take longest), with the session's
    maintenance_work_mem raised. ``built(name, seconds)`` is called as each ends."""

    def build(item: tuple[str, str]) -> None:
        name, definition = item
        started = time.perf_counter()
        with _connect(settings_dict) as conn:
            # Builds already run side by side, a core each.
            _apply_settings(conn, {**INDEX_SETTINGS, "max_parallel_maintenance_workers": "0"})
            conn.execute(definition)
        built(name, time.perf_counter() - started)

    ordered = sorted(definitions, key=lambda item: " USING gin " not in item[1])
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(build, ordered))


def _mongodb_batch(alias: str, columns: list[str], rows: Iterator[tuple], count: int) -> int:
    """Unordered insert_many through the writer's MongoDB store (duplicates skipped)."""
    # Entries keep before/after as JSON text (dmobs.records), as the rows have them.
    entries = [dict(zip(FIELDS, row, strict=True)) for row in islice(rows, count)]
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


LOAD_REVIEWER = "load_reviewer"
REVIEWER_TENANTS = 50


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
