"""The list pipeline of the audit-log screens, shaped like the admin's ChangeList.

scoped root queryset (from a scope mixin) -> each filter narrows it -> ordering
-> one keyset page. List, row fragments, detail and export all go through here,
so a filter can only ever narrow what the scope allows.

Nothing here counts an unbounded scope: the screen's number is
``capped_count()`` (a ``LIMIT 1001`` subquery), and pages are keyset pages on
``(created_at desc, id desc)``, which an index serves without an offset.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from django.core.exceptions import BadRequest
from django.db import connections
from django.db.models import Lookup, Max, Q, QuerySet
from django.db.models.expressions import Col
from django.db.models.sql.where import AND
from django.http import QueryDict
from django.utils import timezone
from django.utils.http import urlencode

from auditui.apps_registry import AuditApp
from auditui.stored import display_text, tidy_entry
from dmobs.fields import ref_values
from dmobs.models import AuditFacet, AuditLog, Tenant
from dmobs.observability import metrics
from dmobs.observability.logger import get_logger
from dmobs.search import search_condition
from dmobs.vocabulary import ACTOR_TYPES, is_valid_trace_id

log = get_logger("auditui.query")

# Query-string keys (DESIGN.md, "Fixed interfaces").
ACTION_VAR = "action"
ACTOR_VAR = "actor"
ACTOR_TYPE_VAR = "actor_type"
RESOURCE_TYPE_VAR = "resource_type"
RESOURCE_ID_VAR = "resource_id"
TENANT_VAR = "tenant"
RANGE_VAR = "range"
FROM_VAR = "from"
TO_VAR = "to"
SEARCH_VAR = "q"
TRACE_VAR = "trace"
CURSOR_VAR = "cursor"
# The live tail's position: entries strictly newer than this cursor.
SINCE_VAR = "since"
FILTER_VARS = (
    ACTION_VAR,
    ACTOR_VAR,
    ACTOR_TYPE_VAR,
    RESOURCE_TYPE_VAR,
    RESOURCE_ID_VAR,
    TENANT_VAR,
    RANGE_VAR,
    FROM_VAR,
    TO_VAR,
    SEARCH_VAR,
    TRACE_VAR,
)

RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
RANGE_LABELS = {
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "all": "All time",
}
DEFAULT_RANGE = "30d"
# ``tenant=platform`` on a screen that sees platform-level entries (no tenant).
PLATFORM_TENANT = "platform"
PAGE_SIZE = 50
# At most this many new entries per live-tail poll (the next poll takes the rest).
TAIL_LIMIT = 100
COUNT_CAP = 1000
CHOICES_LIMIT = 500
# At most this many per-tenant index walks merged for one page (tenant_branches).
MAX_BRANCHES = 100

# Longest action, resource type or actor id a filter takes: other writers store
# longer ones than audit_log() does (a dropdown never offers what is refused).
MAX_NAME = 200
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
ENTRY_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_SEARCH = 200


class InvalidParams(BadRequest):
    """A query parameter has a value the screen cannot use (rendered as a 400 page)."""


@dataclass(frozen=True)
class Scope:
    """What one viewer may see in one app: the root queryset every read starts from."""

    app: AuditApp
    queryset: QuerySet
    # Tenants of the scope, for the tenant filter and column; None means all tenants.
    tenants: tuple[Tenant, ...] | None
    # Filter controls the screen shows (every parameter is accepted everywhere:
    # each one only narrows the scope).
    controls: frozenset[str]
    show_tenant: bool = False
    active_tenant: Tenant | None = None
    memberships: tuple[Any, ...] = ()
    # The screen's subtitle when it differs from the app's (a member's own actions).
    audience: str = ""

    @property
    def sees_platform(self) -> bool:
        """Platform-level entries (no tenant) are in this scope: ``tenant=platform``."""
        return self.tenants is None

    @property
    def several_tenants(self) -> bool:
        return self.tenants is None or len(self.tenants) > 1


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: str


@dataclass(frozen=True)
class Params:
    action: str = ""
    actor: str = ""
    actor_type: str = ""
    resource_type: str = ""
    resource_id: str = ""
    tenant: str = ""
    range: str = DEFAULT_RANGE
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    trace: str = ""
    cursor: Cursor | None = None
    explicit: dict[str, str] = field(default_factory=dict)

    @property
    def custom_dates(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    def filters(self) -> dict[str, str]:
        """The filters as given (canonical values, no cursor), for URLs and the export record."""
        return dict(self.explicit)

    def query_string(self, **extra: str) -> str:
        values = {**self.filters(), **extra}
        return urlencode({k: v for k, v in values.items() if v})

    def without(self, *keys: str, **extra: str) -> str:
        """The query string without ``keys`` (and with ``extra``): a chip's remove link."""
        values = {k: v for k, v in self.filters().items() if k not in keys}
        values.update(extra)
        return urlencode({k: v for k, v in values.items() if v})


def check_known(query: QueryDict, known: Iterable[str]) -> None:
    """A parameter the screen does not know is a 400 that names it: ignoring it would
    show an unfiltered view that looks filtered (``resource_idd=st_1``)."""
    unknown = sorted(set(query.keys()) - set(known))
    if unknown:
        names = ", ".join(repr(CONTROL_RE.sub("?", key)[:40]) for key in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        plural = "s" if len(unknown) > 1 else ""
        raise InvalidParams(
            f"Unknown query parameter{plural} {names}{more}. "
            f"Known: {', '.join(sorted(set(known)))}."
        )


def _text(query: QueryDict, key: str, *, max_length: int) -> str:
    value = query.get(key, "").strip()
    if len(value) > max_length:
        raise InvalidParams(f"The {key!r} filter is longer than {max_length} characters.")
    if CONTROL_RE.search(value):
        raise InvalidParams(f"The {key!r} filter contains control characters.")
    return value


def filter_accepts(value: object) -> bool:
    """Whether the action, resource type and actor filters take ``value`` as it is
    (what the dropdowns may offer)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_NAME
        and value == value.strip()
        and not CONTROL_RE.search(value)
        and display_text(value) == value  # no lone surrogates: a URL cannot carry them
    )


def _date(query: QueryDict, key: str) -> date | None:
    value = _text(query, key, max_length=10)
    if not value:
        return None
    try:
        if not DATE_RE.match(value):
            raise ValueError
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidParams(
            f"{key!r} must be a date like 2026-01-31 (YYYY-MM-DD), got {value!r}."
        ) from None
    if not 1970 <= parsed.year <= 9998:
        raise InvalidParams(f"{key!r} must be a date between 1970 and 9998, got {value!r}.")
    return parsed


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


def parse_params(query: QueryDict) -> Params:
    """Check every known parameter; a bad value raises ``InvalidParams`` with a message.

    Empty values count as absent. ``from``/``to`` are dates in the viewer's time
    zone (the active one) and, when given, replace the ``range`` preset.
    """
    values: dict[str, Any] = {}
    explicit: dict[str, str] = {}

    # Any stored action or resource type can be filtered on (the platform's
    # services write "autoActivated" as well as "auto_activated"): a value the
    # dropdown offers is never refused (see ``filter_accepts``).
    for key in (ACTION_VAR, RESOURCE_TYPE_VAR, ACTOR_VAR):
        values[key] = _text(query, key, max_length=MAX_NAME)
    values[RESOURCE_ID_VAR] = _text(query, RESOURCE_ID_VAR, max_length=128)

    actor_type = _text(query, ACTOR_TYPE_VAR, max_length=16)
    if actor_type and actor_type not in ACTOR_TYPES:
        raise InvalidParams(
            f"'actor_type' must be one of {', '.join(ACTOR_TYPES)}; got {actor_type!r}."
        )
    values[ACTOR_TYPE_VAR] = actor_type

    tenant = _text(query, TENANT_VAR, max_length=100)
    if tenant and not SLUG_RE.match(tenant):
        raise InvalidParams(f"'tenant' must be a tenant's slug like 'acme', got {tenant!r}.")
    values[TENANT_VAR] = tenant

    range_ = _text(query, RANGE_VAR, max_length=8)
    if range_ and range_ not in RANGES:
        raise InvalidParams(f"'range' must be one of {', '.join(RANGES)}; got {range_!r}.")
    values["range"] = range_ or DEFAULT_RANGE

    date_from, date_to = _date(query, FROM_VAR), _date(query, TO_VAR)
    if date_from and date_to and date_from > date_to:
        raise InvalidParams("'from' is after 'to': the date range is empty.")

    q = _text(query, SEARCH_VAR, max_length=MAX_SEARCH)

    trace_id = _text(query, TRACE_VAR, max_length=32).lower()
    if trace_id and not is_valid_trace_id(trace_id):
        raise InvalidParams("'trace' must be a trace id: 32 hex digits, not all zero.")

    cursor_value = _text(query, CURSOR_VAR, max_length=200)
    cursor = decode_cursor(cursor_value) if cursor_value else None

    for key in (
        ACTION_VAR,
        ACTOR_VAR,
        ACTOR_TYPE_VAR,
        RESOURCE_TYPE_VAR,
        RESOURCE_ID_VAR,
        TENANT_VAR,
    ):
        if values[key]:
            explicit[key] = values[key]
    # From/To replace the preset: a URL never says both, so the Period control
    # and the status line can say "Custom dates" without contradiction.
    if range_ and not (date_from or date_to):
        explicit[RANGE_VAR] = range_
    if date_from:
        explicit[FROM_VAR] = date_from.isoformat()
    if date_to:
        explicit[TO_VAR] = date_to.isoformat()
    if q:
        explicit[SEARCH_VAR] = q
    if trace_id:
        explicit[TRACE_VAR] = trace_id

    return Params(
        action=values[ACTION_VAR],
        actor=values[ACTOR_VAR],
        actor_type=values[ACTOR_TYPE_VAR],
        resource_type=values[RESOURCE_TYPE_VAR],
        resource_id=values[RESOURCE_ID_VAR],
        tenant=values[TENANT_VAR],
        range=values["range"],
        date_from=date_from,
        date_to=date_to,
        q=q,
        trace=trace_id,
        cursor=cursor,
        explicit=explicit,
    )


def parse_since(query: QueryDict) -> Cursor | None:
    """The live tail's ``since`` cursor, checked like any other parameter."""
    value = _text(query, SINCE_VAR, max_length=200)
    return decode_cursor(value) if value else None


def resolve_tenant(*, scope: Scope, slug: str) -> Tenant | None:
    """The tenant of a ``tenant=`` filter, looked up among the scope's tenants only;
    None for ``platform`` where the scope holds platform-level entries.

    A tenant outside the scope gets the same answer as one that does not exist,
    so the filter cannot be used to probe for other tenants.
    """
    if slug == PLATFORM_TENANT and scope.sees_platform:
        return None
    if scope.tenants is None:
        tenant = Tenant.objects.filter(slug=slug).first()
    else:
        tenant = next((t for t in scope.tenants if t.slug == slug), None)
    if tenant is None:
        raise InvalidParams(f"There is no tenant {slug!r} in this view.")
    return tenant


def ref_condition(name: str, value: str, *, alias: str) -> Q:
    """``name = value`` for a platform id: on MongoDB also the ObjectId form the
    Node services may have stored (``dmobs.fields.ref_values``)."""
    forms = ref_values([value], alias=alias)
    return Q(**{name: value}) if len(forms) == 1 else Q(**{f"{name}__in": forms})


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def audit_entries(*, scope: Scope, params: Params, now: datetime | None = None) -> QuerySet:
    """The scope's entries narrowed by every filter, newest first (no cursor applied).

    1. Start from the scope's root queryset (the mixin decided what it holds).
    2. Each given filter adds a condition; none can add rows.
    3. Time: ``from``/``to`` (viewer's days, ``to`` inclusive) or the range preset.
    4. Order by (created_at desc, id desc), the keyset order.
    """
    qs = scope.queryset
    if params.tenant:
        tenant = resolve_tenant(scope=scope, slug=params.tenant)
        qs = (
            qs.filter(tenant_id__isnull=True)
            if tenant is None
            else qs.filter(ref_condition("tenant_id", tenant.ref_id, alias=qs.db))
        )
    if params.action:
        qs = qs.filter(action=params.action)
    if params.actor:
        qs = qs.filter(ref_condition("actor_id", params.actor, alias=qs.db))
    if params.actor_type:
        qs = qs.filter(actor_type=params.actor_type)
    if params.resource_type:
        qs = qs.filter(resource_type=params.resource_type)
    if params.resource_id:
        qs = qs.filter(resource_id=params.resource_id)
    if params.trace:
        qs = qs.filter(trace_id=params.trace)
    if params.q:
        # Substring match on description, resource and actor names: on PostgreSQL
        # one expression a trigram index covers (dmobs.search); elsewhere the
        # queryset's own search (on MongoDB optionally through the text index).
        if connections[qs.db].vendor == "postgresql":
            qs = qs.filter(search_condition(params.q, vendor="postgresql"))
        else:
            qs = qs.search(params.q)
    if params.custom_dates:
        if params.date_from:
            qs = qs.filter(created_at__gte=_local_midnight(params.date_from))
        if params.date_to:
            qs = qs.filter(created_at__lt=_local_midnight(params.date_to + timedelta(days=1)))
    else:
        span = RANGES[params.range]
        if span is not None:
            qs = qs.filter(created_at__gte=(now or timezone.now()) - span)
    return qs.order_by("-created_at", "-id")


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


def _root_lookups(qs: QuerySet) -> list[Lookup] | None:
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
    lookups = _root_lookups(qs) or []
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


def _page_query(
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
    fetched = list(_page_query(qs, size + 1))
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
    fetched = _page_query(qs, size, merge_order=("created_at", "id"))
    return skip_unplaceable([tidy_entry(row, bson=bson) for row in fetched])


def resource_history(
    *,
    scope: Scope,
    resource_type: str,
    resource_id: str,
    cursor: Cursor | None,
    tenant: Tenant | None = None,
    platform: bool = False,
    size: int = PAGE_SIZE,
) -> Page:
    """Every entry of one resource in the scope, oldest first, one keyset page at a time.

    A resource id is unique within a tenant: ``tenant`` (or ``platform``) narrows
    to one tenant's resource. Served by ``audit_resource_idx`` (resource type,
    resource id, created, id): the tenant conditions filter the resource's own
    entries only.
    """
    qs = scope.queryset.filter(resource_type=resource_type, resource_id=resource_id)
    if tenant is not None:
        qs = qs.filter(ref_condition("tenant_id", tenant.ref_id, alias=qs.db))
    elif platform:
        qs = qs.filter(tenant_id__isnull=True)
    if cursor is not None:
        qs = after_in_time(qs, cursor)
    fetched = list(qs.order_by("created_at", "id")[: size + 1])
    bson = connections[qs.db].vendor == "mongodb"
    rows = skip_unplaceable([tidy_entry(row, bson=bson) for row in fetched[:size]])
    if len(fetched) > size and rows:
        return Page(rows, encode_cursor(rows[-1].created_at, str(rows[-1].pk)))
    return Page(rows, None)


def iter_entries(qs: QuerySet, *, chunk_size: int = 1000) -> Iterator[AuditLog]:
    """Every row of ``qs`` in keyset chunks: constant memory, no long-lived cursor."""
    cursor = None
    while True:
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
    counted = _page_query(qs if ordered else qs.order_by(), cap + 1, ordered=False).count()
    return min(counted, cap), counted > cap


@dataclass(frozen=True)
class FilterChoices:
    actions: list[str]
    actors: list[tuple[str, str, str]]  # (actor_id, actor_name, actor_type)
    resource_types: list[str]
    tenants: list[Tenant]
    actor_types: tuple[str, ...] = ACTOR_TYPES
    # The tenants (``tenantId``, None for platform) each actor appears in.
    actor_tenants: dict[str, tuple[str | None, ...]] = field(default_factory=dict)


def filter_choices(*, scope: Scope) -> FilterChoices:
    """Dropdown choices, taken from the scope's own rows (never from other tenants).

    This is the one place choices are computed.
    1. From the scope's rows in the facet table (PostgreSQL, ``facet_queryset``),
       else DISTINCT over the scoped root queryset; without the filters, so
       picking one value does not hide the others; bounded by ``CHOICES_LIMIT``.
    2. Actors are keyed by id; the name shown is one of the names they used.
    3. Facet choices are reused while the facet table has not grown (see
       ``_cached_facet_choices``).
    """
    facets = facet_queryset(scope.queryset)
    if facets is None:
        actions, resource_types, actors, actor_tenants = _choices(scope.queryset.order_by())
    else:
        actions, resource_types, actors, actor_tenants = _cached_facet_choices(facets)
    tenants = list(scope.tenants) if scope.tenants is not None else list(Tenant.objects.all())
    return FilterChoices(
        actions=actions,
        actors=actors,
        resource_types=resource_types,
        tenants=sorted(tenants, key=lambda t: t.name.lower()),
        actor_tenants=actor_tenants,
    )


def _choices(base: QuerySet) -> tuple:
    """(actions, resource types, actors, actor tenants) of ``base``: DISTINCT, each
    bounded by CHOICES_LIMIT."""
    # Only values the filters take as they are (other writers store numbers,
    # blanks, control characters): a dropdown never offers what would be refused.
    actions = sorted(
        {
            value
            for value in base.values_list("action", flat=True)
            .distinct()
            .order_by("action")[:CHOICES_LIMIT]
            if filter_accepts(value)
        }
    )
    resource_types = sorted(
        {
            value
            for value in base.values_list("resource_type", flat=True)
            .distinct()
            .order_by("resource_type")[:CHOICES_LIMIT]
            if filter_accepts(value)
        }
    )
    actors: dict[str, tuple[str, str, str]] = {}
    actor_tenants: dict[str, list[str | None]] = {}
    # With the tenant, so an actor's option can say where it acts (agents of the
    # same name in several tenants) and follow the tenant filter.
    for actor_id, actor_name, actor_type, tenant_id in (
        base.values_list("actor_id", "actor_name", "actor_type", "tenant_id")
        .distinct()
        .order_by("actor_name", "actor_id", "tenant_id")[:CHOICES_LIMIT]
    ):
        if not filter_accepts(actor_id):
            continue
        name = actor_name if isinstance(actor_name, str) and actor_name.strip() else actor_id
        kind = actor_type if isinstance(actor_type, str) else str(actor_type or "")
        actors.setdefault(actor_id, (actor_id, display_text(name), display_text(kind)))
        tenant_ref = None if tenant_id is None else str(tenant_id)
        seen = actor_tenants.setdefault(actor_id, [])
        if tenant_ref not in seen:
            seen.append(tenant_ref)
    return (
        actions,
        resource_types,
        sorted(actors.values(), key=lambda a: (a[1].lower(), a[0])),
        {actor_id: tuple(refs) for actor_id, refs in actor_tenants.items()},
    )


# Facet choices per (database, scope SQL): (facet table version, time, choices).
# Choices only change when a facet row is added: rows are never updated or
# deleted, and ids come from a sequence, so the highest id is a version. A
# transaction that commits after one with a higher id is caught by the time
# bound. Per process: each worker keeps its own copy.
CHOICES_CACHE_SECONDS = 60.0
CHOICES_CACHE_SIZE = 512
_choices_cache: OrderedDict[tuple, tuple[int | None, float, tuple]] = OrderedDict()
_choices_lock = threading.Lock()


def _cached_facet_choices(facets: QuerySet) -> tuple:
    sql, params = facets.query.sql_with_params()
    key = (facets.db, sql, repr(params))
    version = AuditFacet.objects.using(facets.db).aggregate(v=Max("id"))["v"]
    now = monotonic()
    with _choices_lock:
        hit = _choices_cache.get(key)
        if hit is not None and hit[0] == version and now - hit[1] < CHOICES_CACHE_SECONDS:
            _choices_cache.move_to_end(key)
            return hit[2]
    choices = _choices(facets)
    with _choices_lock:
        _choices_cache[key] = (version, now, choices)
        _choices_cache.move_to_end(key)
        while len(_choices_cache) > CHOICES_CACHE_SIZE:
            _choices_cache.popitem(last=False)
    return choices


FACET_FIELDS = frozenset({"tenant_id", "actor_type", "actor_id", "action", "resource_type"})


def facet_queryset(qs: QuerySet) -> QuerySet | None:
    """The facet rows (``dmobs.models.AuditFacet``) of a scope's root queryset.

    On PostgreSQL a trigger keeps ``audit_facets`` complete, so choices are a
    lookup in a table of a few thousand rows instead of DISTINCT over the scope.
    The scope's conditions are carried over one by one; a scope with any other
    kind of condition (or another store) returns None and gets DISTINCT.
    """
    if connections[qs.db].vendor != "postgresql":
        return None
    lookups = _root_lookups(qs)
    if lookups is None or len(lookups) != len(qs.query.where.children):
        return None
    condition = Q()
    for lookup in lookups:
        name = lookup.lhs.target.name
        if name not in FACET_FIELDS or lookup.lookup_name not in ("exact", "in", "isnull"):
            return None
        if hasattr(lookup.rhs, "resolve_expression"):
            return None
        condition &= Q(**{f"{name}__{lookup.lookup_name}": lookup.rhs})
    return AuditFacet.objects.using(qs.db).filter(condition).order_by()


def tenants_by_ref(refs: set[str | None]) -> dict[str, Tenant]:
    """Tenants of the given ``tenantId`` values, in one query (for the Tenant column)."""
    wanted = {ref for ref in refs if ref}
    if not wanted:
        return {}
    return {t.ref_id: t for t in Tenant.objects.filter(ref_id__in=wanted)}


def get_entry(*, scope: Scope, entry_id: str) -> AuditLog | None:
    """One entry of the scope, or None (also for a malformed id)."""
    if not ENTRY_ID_RE.match(entry_id):
        return None
    qs = scope.queryset
    entry = qs.filter(pk=entry_id).first()
    bson = connections[qs.db].vendor == "mongodb"
    return None if entry is None else tidy_entry(entry, bson=bson)
