"""Bulk generation of audit entries for benchmarks (the ``audit_load`` command).

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

The PostgreSQL path (server-side generation over parallel connections) is
``dmobs.demo.pgload``; the command that runs both is ``audit_load``.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from django.db import connections, transaction

from dmobs.demo import world
from dmobs.demo.events import Event, EventFactory
from dmobs.models import AuditLog, Tenant
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
# The reviewer user the load assigns to its first tenants (bench/run.py reads it).
LOAD_REVIEWER = "load_reviewer"
REVIEWER_TENANTS = 50
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


def _person(rng: random.Random) -> world.Actor:
    name = f"{rng.choice(world.FIRST_NAMES)} {rng.choice(world.LAST_NAMES)}"
    return world.Actor("human", format(rng.getrandbits(96), "024x"), name)


def _content(event: Event, tenant_id: str | None) -> tuple:
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
    factory = EventFactory(rng)
    shares = tenant_shares(len(tenants))
    reviewers = [_person(rng) for _ in range(8)]
    staff = [_person(rng) for _ in range(4)]
    casts = []
    for tenant, share in zip(tenants, shares, strict=False):
        # Bigger tenants have more people: ~30 at the top, at least 2.
        people = [_person(rng) for _ in range(max(2, round(30 * share / BIG_TENANT_SHARE)))]
        admins = max(1, len(people) // 5)
        casts.append(
            world.Cast(
                tenant.ref_id,
                tenant.name,
                tenant.plan,
                admins=people[:admins],
                members=people[admins:],
                reviewers=rng.sample(reviewers, 2),
                agents=world.agents_for(tenant.slug),
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
