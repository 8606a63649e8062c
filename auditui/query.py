"""The list pipeline of the audit-log screens: ``AuditChangeList``, shaped like the admin's.

scoped root queryset (from a scope, ``auditui.scopes``) -> each filter
(``auditui.filters``) narrows it -> ordering -> one keyset page
(``auditui.paging``). List, row fragments, detail and export all read through
one ``AuditChangeList``, so a filter can only ever narrow what the scope allows.

Nothing here counts an unbounded scope: the screen's number is
``capped_count()`` (a ``LIMIT 1001`` subquery), and pages are keyset pages on
``(created_at desc, id desc)``, which an index serves without an offset.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from time import monotonic
from typing import Any

from django.db import connections
from django.db.models import Max, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.http import urlencode

from auditui.errors import InvalidParams
from auditui.filters import (
    DEFAULT_RANGE,
    FACET_FIELDS,
    FILTER_KEYS,
    FILTERS,
    URL_ORDER,
    check_known,
    filter_accepts,
    ref_condition,
    text_value,
)
from auditui.paging import (
    CURSOR_VAR,
    ENTRY_ID_RE,
    PAGE_SIZE,
    SINCE_VAR,
    Cursor,
    Page,
    after_in_time,
    capped_count,
    capped_count_with,
    decode_cursor,
    encode_cursor,
    page_entries,
    root_lookups,
    skip_unplaceable,
)
from auditui.scopes import Scope
from auditui.search import expand_search
from auditui.stored import display_text, tidy_entry
from dmobs.models import AuditFacet, AuditLog, Tenant
from dmobs.vocabulary import ACTOR_TYPES

__all__ = [
    "AuditChangeList",
    "Cursor",
    "FilterChoices",
    "InvalidParams",
    "Page",
    "Params",
    "Scope",
    "decode_cursor",
    "encode_cursor",
    "filter_choices",
    "page_entries",
    "parse_params",
    "resource_history",
]

CHOICES_LIMIT = 500


@dataclass(frozen=True)
class Params:
    """The checked values of every filter (``auditui.filters``) and the page's cursor."""

    action: str = ""
    actor: str = ""
    actor_type: str = ""
    resource_type: str = ""
    resource_id: str = ""
    tenant: str = ""
    range: str = DEFAULT_RANGE
    range_given: bool = False
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    trace: str = ""
    entry_id: str = ""
    cursor: Cursor | None = None
    # Exclusions by query key (``not_action``): the values each filter keeps out.
    excluded: dict[str, tuple[str, ...]] = field(default_factory=dict)
    explicit: dict[str, str | list[str]] = field(default_factory=dict)

    @property
    def custom_dates(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    def filters(self) -> dict[str, str | list[str]]:
        """The filters as given (canonical values, no cursor), for URLs and the export
        record; an exclusion (``not_action``) holds a list."""
        return dict(self.explicit)

    def filter_pairs(self) -> list[tuple[str, str]]:
        """The filters as (key, value) pairs, an exclusion's values one pair each."""
        return [
            (key, item)
            for key, value in self.explicit.items()
            for item in (value if isinstance(value, list) else [value])
        ]

    def query_string(self, **extra: str) -> str:
        return _encoded({**self.filters(), **extra})

    def without(self, *keys: str, **extra: str) -> str:
        """The query string without ``keys`` (and with ``extra``): a chip's remove link."""
        values = {k: v for k, v in self.filters().items() if k not in keys}
        return _encoded({**values, **extra})

    def without_value(self, key: str, value: str) -> str:
        """The query string with one value of a repeatable key (an exclusion) dropped."""
        values = self.filters()
        values[key] = [v for v in values.get(key, []) if v != value]
        return _encoded(values)


def _encoded(values: dict[str, str | list[str]]) -> str:
    """A query string of the set values; a list is the key repeated."""
    return urlencode({k: v for k, v in values.items() if v}, doseq=True)


def parse_params(query: QueryDict) -> Params:
    """Each filter checks its own keys; a bad value raises ``InvalidParams`` with a message.

    Empty values count as absent. ``from``/``to`` are dates in the viewer's time
    zone (the active one) and, when given, replace the ``range`` preset.
    """
    # Qualifiers typed into the search box become the filters' own parameters.
    query = expand_search(query)
    values: dict[str, Any] = {}
    excluded: dict[str, tuple[str, ...]] = {}
    for flt in FILTERS:
        values.update(flt.parse(query))
        if found := flt.parse_excluded(query):
            excluded[flt.exclude_key] = found
    values["excluded"] = excluded
    cursor_value = text_value(query, CURSOR_VAR, max_length=200)
    values["cursor"] = decode_cursor(cursor_value) if cursor_value else None
    params = Params(**values)
    explicit: dict[str, str | list[str]] = {}
    for flt in URL_ORDER:
        explicit.update(flt.explicit(params))
    params.explicit.update(explicit)
    return params


def parse_since(query: QueryDict) -> Cursor | None:
    """The live tail's ``since`` cursor, checked like any other parameter."""
    value = text_value(query, SINCE_VAR, max_length=200)
    return decode_cursor(value) if value else None


def audit_entries(*, scope: Scope, params: Params, now: datetime | None = None) -> QuerySet:
    """The scope's entries narrowed by every filter, newest first (no cursor applied).

    1. Start from the scope's root queryset (the scope decided what it holds).
    2. Each filter adds its condition (``Filter.apply``); none can add rows.
    3. Order by (created_at desc, id desc), the keyset order.
    """
    qs = scope.queryset
    now = now or timezone.now()
    for flt in FILTERS:
        qs = flt.apply(qs, params, scope, now)
    return qs.order_by("-created_at", "-id")


class AuditChangeList:
    """One read of one scope: params, queryset, page, capped count and choices.

    ``known`` are the query keys the screen takes (a 400 names any other one).
    Each part is computed once, on first use; a bad parameter raises
    ``InvalidParams`` from the first part that needs it.
    """

    LIST_KEYS = frozenset(FILTER_KEYS) | {CURSOR_VAR, SINCE_VAR}

    def __init__(
        self,
        scope: Scope,
        query: QueryDict,
        *,
        known: Iterable[str] = LIST_KEYS,
        now: datetime | None = None,
    ):
        self.scope = scope
        self.query = query
        self.known = frozenset(known)
        self.now = now

    @cached_property
    def params(self) -> Params:
        check_known(self.query, self.known)
        return parse_params(self.query)

    @cached_property
    def since(self) -> Cursor | None:
        return parse_since(self.query)

    @cached_property
    def queryset(self) -> QuerySet:
        """Every entry of the scope the filters keep, newest first."""
        return audit_entries(scope=self.scope, params=self.params, now=self.now)

    @cached_property
    def listed(self) -> QuerySet:
        """The queryset without before/after: the list leaves the jsonb columns on the server."""
        qs = self.queryset.defer("before", "after")
        if self.since is not None:
            # The tail's plain-HTTP twin: the page of entries newer than the cursor.
            qs = after_in_time(qs, self.since).order_by("-created_at", "-id")
        return qs

    def page(self, size: int = PAGE_SIZE) -> Page:
        return page_entries(self.listed, cursor=self.params.cursor, size=size)

    def capped_count(self, *, for_choices: bool = False) -> tuple[int, bool]:
        """The screen's (capped) count. ``for_choices``: the page will show the filter
        choices too, so the same round trip reads the facet table's version
        (``_cached_facet_choices``) and ``choices()`` needs no query of its own
        while the choices it keeps are current."""
        # Free text is found through the trigram index, unordered (paging.capped_count).
        ordered = not self.params.q
        facets = facet_queryset(self.scope.queryset) if for_choices else None
        if facets is None or facets.db != self.listed.db:
            return capped_count(self.listed, ordered=ordered)
        count, more, self._facet_version = capped_count_with(
            self.listed, facet_version_sql(facets.db), ordered=ordered
        )
        return count, more

    def choices(self) -> FilterChoices:
        return filter_choices(
            scope=self.scope, facet_version=getattr(self, "_facet_version", PROBE)
        )

    def entry(self, entry_id: str) -> AuditLog | None:
        return get_entry(scope=self.scope, entry_id=entry_id)


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


@dataclass(frozen=True)
class FilterChoices:
    actions: list[str]
    actors: list[tuple[str, str, str]]  # (actor_id, actor_name, actor_type)
    resource_types: list[str]
    tenants: list[Tenant]
    actor_types: tuple[str, ...] = ACTOR_TYPES
    # The tenants (``tenantId``, None for platform) each actor appears in.
    actor_tenants: dict[str, tuple[str | None, ...]] = field(default_factory=dict)


# ``filter_choices``' facet version when the caller has not read it: read it now.
PROBE: Any = object()


def filter_choices(*, scope: Scope, facet_version: int | None = PROBE) -> FilterChoices:
    """Dropdown choices, taken from the scope's own rows (never from other tenants).

    This is the one place choices are computed.
    1. From the scope's rows in the facet table (PostgreSQL, ``facet_queryset``),
       else DISTINCT over the scoped root queryset; without the filters, so
       picking one value does not hide the others; bounded by ``CHOICES_LIMIT``.
    2. Actors are keyed by id; the name shown is one of the names they used.
    3. Facet choices are reused while the facet table has not grown (see
       ``_cached_facet_choices``); ``facet_version`` is the table's version when
       the caller read it in this request already (``AuditChangeList.capped_count``).
    """
    facets = facet_queryset(scope.queryset)
    if facets is None:
        actions, resource_types, actors, actor_tenants = _choices(scope.queryset.order_by())
    else:
        actions, resource_types, actors, actor_tenants = _cached_facet_choices(
            facets, facet_version
        )
    tenants = list(scope.tenants) if scope.tenants is not None else Tenant.objects.every()
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


def facet_version_sql(db: str) -> str:
    """The facet table's version: its highest id (a scalar query without parameters)."""
    quote = connections[db].ops.quote_name
    meta = AuditFacet._meta
    return f"SELECT MAX({quote(meta.pk.column)}) FROM {quote(meta.db_table)}"


def _cached_facet_choices(facets: QuerySet, version: int | None = PROBE) -> tuple:
    sql, params = facets.query.sql_with_params()
    key = (facets.db, sql, repr(params))
    if version is PROBE:
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


def facet_queryset(qs: QuerySet) -> QuerySet | None:
    """The facet rows (``dmobs.models.AuditFacet``) of a scope's root queryset.

    On PostgreSQL a trigger keeps ``audit_facets`` complete, so choices are a
    lookup in a table of a few thousand rows instead of DISTINCT over the scope.
    The scope's conditions are carried over one by one; a scope with any other
    kind of condition (or another store) returns None and gets DISTINCT.
    """
    if connections[qs.db].vendor != "postgresql":
        return None
    lookups = root_lookups(qs)
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
