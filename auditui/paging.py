"""Keyset paging of the audit-log lists: cursors, pages, the live tail's walk, capped counts.

Pages are keyset pages on ``(created_at desc, id desc)``, which an index serves
without an offset; the live tail and a resource's history walk the other way
(``after_in_time``). Where one ordered index scan cannot serve a filter, a page is
a merge of per-tenant index walks (``page_query``, ``tenant_branches``). Nothing
here counts an unbounded scope: ``capped_count`` stops at ``COUNT_CAP + 1``.

Public: the export (``auditui.export``) and the bench build on these too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Lookup, Q, QuerySet
from django.db.models.expressions import Col
from django.db.models.sql.where import AND

from auditui.errors import InvalidParams
from auditui.stored import tidy_entry
from dmobs.models import AuditLog
from dmobs.observability import metrics
from dmobs.observability.logger import get_logger

log = get_logger("auditui.query")

# Query-string keys of a position (DESIGN.md, "Fixed interfaces").
CURSOR_VAR = "cursor"
# The live tail's position: entries strictly newer than this cursor.
SINCE_VAR = "since"

PAGE_SIZE = 50
# At most this many new entries per live-tail poll (the next poll takes the rest).
TAIL_LIMIT = 100
COUNT_CAP = 1000
# At most this many per-tenant index walks merged for one page (tenant_branches).
MAX_BRANCHES = 100
ENTRY_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: str


def encode_cursor(created_at: datetime, entry_id: str) -> str:
    """The opaque cursor of the position just after (created_at, entry_id)."""
    raw = f"{created_at.astimezone(UTC).isoformat()}|{entry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, entry_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None or not ENTRY_ID_RE.match(entry_id):
            raise ValueError
        # Year 1 at +14:00 (or 9999 at -14:00) is not a time in UTC.
        created_at = created_at.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidParams(
            "The page cursor is not valid (it may be cut short); start again from the first page."
        ) from None
    return Cursor(created_at=created_at, id=entry_id)


def after_cursor(qs: QuerySet, cursor: Cursor) -> QuerySet:
    """Rows strictly after ``cursor`` in (created_at desc, id desc) order.

    The redundant ``created_at <= cursor`` is what an index can seek to: without
    it the OR is only a filter, and a deep page would walk the index from the top.
    """
    return qs.filter(created_at__lte=cursor.created_at).filter(
        Q(created_at__lt=cursor.created_at) | Q(created_at=cursor.created_at, id__lt=cursor.id)
    )


@dataclass(frozen=True)
class Page:
    entries: list[AuditLog]
    next_cursor: str | None


def root_lookups(qs: QuerySet) -> list[Lookup] | None:
    """The top-level ``field <op> constant`` conditions of ``qs`` (ANDed), or None
    when its WHERE is anything else (OR, NOT, expressions)."""
    where = qs.query.where
    if where.connector != AND or where.negated:
        return None
    lookups = []
    for child in where.children:
        if isinstance(child, Lookup) and isinstance(child.lhs, Col):
            lookups.append(child)
    return lookups


def tenant_branches(qs: QuerySet) -> list[str | None] | None:
    """The tenants to page one by one, when one ordered index scan cannot serve ``qs``.

    The list indexes lead with ``tenantId``, so "newest first" is an index walk
    for one tenant, and for several tenants a merge of per-tenant walks:
    1. ``tenantId IN (a, b, ...)`` (a reviewer's tenants): those tenants.
    2. An ``actor`` filter without a tenant (Manage): the tenants where that actor
       appears (``tenants_of_actor``, from audit_logs, never from the facets), so
       each walk uses (tenant, actor, created).
    Anything else (one tenant, or every tenant without an actor) returns None.
    PostgreSQL only: other stores are small or not SQL.
    """
    if connections[qs.db].vendor != "postgresql":
        return None
    lookups = root_lookups(qs) or []
    tenant_conditions = [lk for lk in lookups if lk.lhs.target.name == "tenant_id"]
    if any(lk.lookup_name in ("exact", "isnull") for lk in tenant_conditions):
        return None
    tenant_in = [lk for lk in tenant_conditions if lk.lookup_name == "in"]
    if any(not isinstance(lk.rhs, list | tuple | set | frozenset) for lk in tenant_in):
        return None
    if tenant_in:
        refs = sorted({ref for lk in tenant_in for ref in lk.rhs}, key=str)
        return refs if 1 < len(refs) <= MAX_BRANCHES else None
    actor = [lk for lk in lookups if lk.lhs.target.name == "actor_id" and lk.lookup_name == "exact"]
    if actor and not tenant_conditions:
        refs = tenants_of_actor(qs.db, actor[0].rhs, limit=MAX_BRANCHES + 1)
        return refs if len(refs) <= MAX_BRANCHES else None
    return None


# The tenants (NULL: platform-level) where an actor has entries, read from
# audit_logs itself: a loose index scan over the distinct tenantIds of
# audit_tenant_created_idx (one index probe per tenant), each kept when
# audit_tenant_actor_idx has an entry of the actor. Not from audit_facets: a
# derived table may shape the filter choices but must never decide which
# entries a filter returns (issue 12, finding 2: deleting a facet row hid an
# actor's entries of that tenant from the super admin, in the list and export).
TENANTS_OF_ACTOR_SQL = """
WITH RECURSIVE tenants(ref) AS (
    (SELECT "tenantId" FROM {table} WHERE "tenantId" IS NOT NULL ORDER BY "tenantId" LIMIT 1)
    UNION ALL
    SELECT (SELECT "tenantId" FROM {table} WHERE "tenantId" > tenants.ref
            ORDER BY "tenantId" LIMIT 1)
    FROM tenants WHERE tenants.ref IS NOT NULL
)
(SELECT NULL WHERE EXISTS (SELECT 1 FROM {table} WHERE "tenantId" IS NULL AND "actorId" = %s))
UNION ALL
(SELECT ref FROM tenants WHERE ref IS NOT NULL
    AND EXISTS (SELECT 1 FROM {table} WHERE "tenantId" = tenants.ref AND "actorId" = %s)
    LIMIT %s)
"""


def tenants_of_actor(db: str, actor_id: str, *, limit: int) -> list[str | None]:
    """At most ``limit`` tenants (None first: platform-level) where ``actor_id``
    has entries, from audit_logs (PostgreSQL)."""
    table = connections[db].ops.quote_name(AuditLog._meta.db_table)
    with connections[db].cursor() as cursor:
        cursor.execute(TENANTS_OF_ACTOR_SQL.format(table=table), [actor_id, actor_id, limit])
        return [row[0] for row in cursor.fetchall()][:limit]


def page_query(
    qs: QuerySet, size: int, *, ordered: bool = True, merge_order: tuple = ("-created_at", "-id")
) -> QuerySet:
    """``qs[:size]``, as a merge of per-tenant index walks when that is cheaper.

    ``merge_order`` sorts the merged branches: names of selected columns that
    sort like (created_at, id), for a ``values_list`` query.
    """
    refs = tenant_branches(qs)
    if refs is None:
        return qs[:size]
    if not refs:
        return qs.none()
    branches = [qs.filter(tenant_id=ref)[:size] for ref in refs]
    if len(branches) == 1:
        return branches[0]
    merged = branches[0].union(*branches[1:], all=True)
    if ordered:
        merged = merged.order_by(*merge_order)
    return merged[:size]


def page_entries(qs: QuerySet, *, cursor: Cursor | None, size: int = PAGE_SIZE) -> Page:
    """One keyset page: ``size`` rows after the cursor, and the cursor of the next page.

    Each row is made safe to show (``auditui.stored.tidy_entry``). A row whose
    ``createdAt`` is not a date has no place in the (created_at, id) order: it
    is left out, counted and logged with its id (``skip_unplaceable``). Stores
    sort such values after every date (MongoDB's type order), so they only
    come at the end of a walk, and the next cursor is the last placed row.
    """
    if cursor is not None:
        qs = after_cursor(qs, cursor)
    fetched = list(page_query(qs, size + 1))
    more = len(fetched) > size
    bson = connections[qs.db].vendor == "mongodb"
    rows = skip_unplaceable([tidy_entry(row, bson=bson) for row in fetched[:size]])
    if more and rows:
        return Page(rows, encode_cursor(rows[-1].created_at, str(rows[-1].pk)))
    return Page(rows, None)


def skip_unplaceable(rows: list[AuditLog]) -> list[AuditLog]:
    """The rows that have a time; the others are counted and logged by id."""
    placed = [row for row in rows if row.created_at is not None]
    if len(placed) < len(rows):
        for row in rows:
            if row.created_at is None:
                metrics.AUDIT_MALFORMED_SKIPPED.inc()
                log.warning(
                    "audit entry left out",
                    entryId=str(row.pk),
                    reason="; ".join(row.problems),
                )
    return placed


def after_in_time(qs: QuerySet, cursor: Cursor) -> QuerySet:
    """Rows strictly after ``cursor`` in (created_at, id) order: the oldest-first
    walks of the live tail and a resource's history (see ``after_cursor``)."""
    return qs.filter(created_at__gte=cursor.created_at).filter(
        Q(created_at__gt=cursor.created_at) | Q(created_at=cursor.created_at, id__gt=cursor.id)
    )


def entries_since(
    qs: QuerySet, *, since: Cursor, until: datetime | None = None, size: int = TAIL_LIMIT
) -> list[AuditLog]:
    """The live tail's poll: at most ``size`` entries strictly newer than ``since``, oldest first.

    1. Strictly after the cursor in keyset order, so a poll never repeats a row
       the previous one returned.
    2. Oldest first and bounded: when more than ``size`` arrived, the next poll
       continues after the last one returned, so none is skipped.
    3. Not newer than ``until`` (now minus a settle time): an entry stamped a moment
       ago may still be on its way to the store while a later one is already
       there; leaving the last moment to the next poll keeps it from being passed.
    """
    qs = after_in_time(qs, since)
    if until is not None:
        qs = qs.filter(created_at__lte=until)
    qs = qs.order_by("created_at", "id")
    bson = connections[qs.db].vendor == "mongodb"
    fetched = page_query(qs, size, merge_order=("created_at", "id"))
    return skip_unplaceable([tidy_entry(row, bson=bson) for row in fetched])


def iter_entries(
    qs: QuerySet, *, chunk_size: int = 1000, before_chunk: Callable[[], object] | None = None
) -> Iterator[AuditLog]:
    """Every row of ``qs`` in keyset chunks: constant memory, no long-lived cursor.
    ``before_chunk`` is called before each chunk after the first is read."""
    cursor = None
    while True:
        if cursor is not None and before_chunk is not None:
            before_chunk()
        page = page_entries(qs, cursor=cursor, size=chunk_size)
        yield from page.entries
        if page.next_cursor is None:
            return
        cursor = decode_cursor(page.next_cursor)


def capped_count(qs: QuerySet, *, cap: int = COUNT_CAP, ordered: bool = False) -> tuple[int, bool]:
    """How many rows match, counting at most ``cap + 1`` (never the whole scope).

    Returns ``(count, more)`` where ``more`` means "more than ``cap``".

    ``ordered`` keeps the list's order in the counted subquery: the planner then
    walks the same index as the page and stops at ``cap + 1`` matches, where
    without an order it may build a bitmap of every match of the index condition
    first (at 10M entries: 52,000 for a 1,001-row count, 27 ms instead of 7).
    Not for free text: a rare term is found through the trigram index, unordered.
    """
    # Per tenant when one index cannot serve the whole filter (see tenant_branches):
    # a LIMIT alone does not bound the work when the matches are rare.
    # With ``ordered`` each per-tenant branch keeps the order; their merge needs none.
    counted = _counted(qs, cap, ordered=ordered).count()
    return min(counted, cap), counted > cap


def _counted(qs: QuerySet, cap: int, *, ordered: bool) -> QuerySet:
    """At most ``cap + 1`` rows of ``qs``: what a capped count counts."""
    return page_query(qs if ordered else qs.order_by(), cap + 1, ordered=False)


def capped_count_with(
    qs: QuerySet, scalar_sql: str, *, cap: int = COUNT_CAP, ordered: bool = False
) -> tuple[int, bool, Any]:
    """``capped_count`` and the value of one more scalar query (SQL without
    parameters, on the same database), in one round trip: a list page's count and
    its filter choices' facet version (``auditui.query``). SQL stores only.

    The counted subquery is the one ``capped_count`` has Django build (the ids of
    at most ``cap + 1`` rows, per tenant branch where the page is), so the plan is
    the same; the scalar is an InitPlan, run once.
    """
    counted = _counted(qs.values_list("pk"), cap, ordered=ordered)
    try:
        sql, params = counted.query.get_compiler(using=counted.db).as_sql()
    except EmptyResultSet:  # e.g. an actor with entries in no tenant: nothing to count
        sql, params = None, ()
    with connections[counted.db].cursor() as cursor:
        if sql is None:
            cursor.execute(f"SELECT 0, ({scalar_sql})")
        else:
            cursor.execute(f"SELECT COUNT(*), ({scalar_sql}) FROM ({sql}) counted", params)
        found, value = cursor.fetchone()
    return min(found, cap), found > cap, value
