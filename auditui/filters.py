"""Every filter of the audit-log screens, each declared once.

A filter is one object that knows everything about itself:

- ``keys``: its query-string key(s) (DESIGN.md, "Fixed interfaces");
- ``parse()``: the checked value(s) from a query, or ``InvalidParams`` with the 400 message;
- ``explicit()``: its canonical value(s) for URLs, chips' links and the export record;
- ``apply()``: the condition it adds to a scope's queryset (it can only narrow);
- ``control``: the template of its control on the list (a scope offers it or not);
- ``facet``: the ``AuditFacet`` column its dropdown's choices come from;
- ``qualifier``: its name in the search box (``action:logged_in``);
- ``exclude_key``: ``not_<qualifier>``, the values it keeps out (``-action:logged_in``
  in the search box; repeatable), each checked like the filter's own value;
- ``chips()``: what the active-filter chips above the results say about it.

``FILTERS`` is the order the list's controls appear in. A screen's scope names
which of them it shows as controls (``auditui.scopes``); every one is accepted
everywhere, since each only narrows the scope. Adding a filter is adding one
object here (and its control template, if it has one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connections
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from auditui.errors import InvalidParams
from auditui.paging import ENTRY_ID_RE
from auditui.stored import display_text
from dmobs.fields import ref_values
from dmobs.models import Tenant
from dmobs.search import search_condition
from dmobs.vocabulary import ACTOR_TYPES, TRACE_ID_RE

if TYPE_CHECKING:
    from auditui.scopes import Scope

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

# Longest action, resource type or actor id a filter takes: other writers store
# longer ones than audit_log() does (a dropdown never offers what is refused).
MAX_NAME = 200
MAX_SEARCH = 200
# ``not_action=…``: the search box's ``-action:…``; at most this many values per filter.
EXCLUDE_PREFIX = "not_"
MAX_EXCLUDED = 20
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def text_value(query: QueryDict, key: str, *, max_length: int) -> str:
    """``key``'s value, stripped; too long or with control characters is a 400."""
    return checked_text(query.get(key, ""), key, max_length=max_length)


def checked_text(value: str, key: str, *, max_length: int) -> str:
    """``value`` of the parameter ``key``, stripped and checked as ``text_value`` says."""
    value = value.strip()
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


def ref_condition(name: str, value: str, *, alias: str) -> Q:
    """``name = value`` for a platform id: on MongoDB also the ObjectId form the
    Node services may have stored (``dmobs.fields.ref_values``)."""
    forms = ref_values([value], alias=alias)
    return Q(**{name: value}) if len(forms) == 1 else Q(**{f"{name}__in": forms})


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


@dataclass(frozen=True)
class Chip:
    """One active filter above the results; ``keys`` are what its remove link drops."""

    label: str
    value: str
    keys: tuple[str, ...]
    # An exclusion's chip drops only its own value: ``(exclude_key, value)``.
    drop: tuple[str, str] | None = None


@dataclass(frozen=True)
class ChipContext:
    """What a filter's chip may need besides the params: the scope and the shown rows."""

    scope: Scope
    rows: list  # auditui.rows.Row: row.entry is the AuditLog


@dataclass(frozen=True)
class Filter:
    """One filter; subclasses set how it parses and what condition it adds."""

    key: str
    label: str
    # ``Params`` attribute holding the value (the key, where it is a name).
    field: str = ""
    qualifier: str = ""
    facet: str = ""
    control: str = ""
    max_length: int = MAX_NAME

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,)

    @property
    def attr(self) -> str:
        return self.field or self.key

    @property
    def exclude_key(self) -> str:
        """``not_<qualifier>``: the query key of the values this filter keeps out."""
        return f"{EXCLUDE_PREFIX}{self.qualifier}" if self.qualifier else ""

    @property
    def exclude_label(self) -> str:
        return f"Not {self.label.lower()}"

    def parse(self, query: QueryDict) -> dict[str, Any]:
        return {self.attr: self.check(text_value(query, self.key, max_length=self.max_length))}

    def check(self, value: str) -> str:
        """The canonical form of a (stripped, bounded) value; ``InvalidParams`` if it
        is not one this filter takes. Empty means "not set"."""
        return value

    def parse_excluded(self, query: QueryDict) -> tuple[str, ...]:
        """The checked values of ``exclude_key`` (repeatable), without repeats."""
        if not self.exclude_key:
            return ()
        values: list[str] = []
        for raw in query.getlist(self.exclude_key):
            try:
                value = self.check_excluded(raw)
            except InvalidParams as exc:
                raise InvalidParams(f"{self.exclude_key!r} (excluded {self.key}): {exc}") from None
            if value and value not in values:
                values.append(value)
        if len(values) > MAX_EXCLUDED:
            raise InvalidParams(
                f"{self.exclude_key!r} takes at most {MAX_EXCLUDED} values, got {len(values)}."
            )
        return tuple(values)

    def check_excluded(self, raw: str) -> str:
        """One excluded value, checked as the filter's own value would be."""
        return self.check(checked_text(raw, self.key, max_length=self.max_length))

    def explicit(self, params: Any) -> dict[str, str | list[str]]:
        value = getattr(params, self.attr)
        result: dict[str, str | list[str]] = {self.key: value} if value else {}
        excluded = params.excluded.get(self.exclude_key)
        if excluded:
            result[self.exclude_key] = list(excluded)
        return result

    def apply(self, qs: QuerySet, params: Any, scope: Scope, now: datetime) -> QuerySet:
        value = getattr(params, self.attr)
        if value:
            qs = self.narrow(qs, value, scope)
        for excluded in params.excluded.get(self.exclude_key, ()):
            qs = qs.exclude(self.excluded_condition(excluded, scope, qs.db))
        return qs

    def narrow(self, qs: QuerySet, value: str, scope: Scope) -> QuerySet:
        return qs.filter(self.condition(value, scope, qs.db))

    def condition(self, value: str, scope: Scope, alias: str) -> Q:
        """The entries ``value`` selects (kept by the filter, or left out by its exclusion)."""
        return Q(**{self.facet: value})

    def excluded_condition(self, value: str, scope: Scope, alias: str) -> Q:
        return self.condition(value, scope, alias)

    def chips(self, params: Any, ctx: ChipContext) -> list[Chip]:
        value = getattr(params, self.attr)
        return [Chip(self.label, value, self.keys)] if value else []

    def excluded_chips(self, params: Any) -> list[Chip]:
        key = self.exclude_key
        return [
            Chip(self.exclude_label, value, (key,), drop=(key, value))
            for value in params.excluded.get(key, ())
        ]


@dataclass(frozen=True)
class SearchFilter(Filter):
    """Substring match on description, resource and actor names: on PostgreSQL one
    expression a trigram index covers (dmobs.search); elsewhere the queryset's own
    search (on MongoDB optionally through the text index)."""

    @property
    def exclude_key(self) -> str:
        return ""  # free words have no qualifier (a "-word" is searched as typed)

    def narrow(self, qs: QuerySet, value: str, scope: Scope) -> QuerySet:
        if connections[qs.db].vendor == "postgresql":
            return qs.filter(search_condition(value, vendor="postgresql"))
        return qs.search(value)


@dataclass(frozen=True)
class TenantFilter(Filter):
    """A tenant's slug, among the scope's tenants; ``platform`` for platform-level entries."""

    def check(self, value: str) -> str:
        if value and not SLUG_RE.match(value):
            raise InvalidParams(f"'tenant' must be a tenant's slug like 'acme', got {value!r}.")
        return value

    def condition(self, value: str, scope: Scope, alias: str) -> Q:
        tenant = resolve_tenant(scope=scope, slug=value)
        if tenant is None:
            return Q(tenant_id__isnull=True)
        return ref_condition("tenant_id", tenant.ref_id, alias=alias)

    def chips(self, params: Any, ctx: ChipContext) -> list[Chip]:
        slug = params.tenant
        if not slug:
            return []
        scope = ctx.scope
        label = "Platform" if slug == PLATFORM_TENANT and scope.sees_platform else ""
        if not label:
            tenants = Tenant.objects.filter(slug=slug) if scope.tenants is None else scope.tenants
            tenant = next((t for t in tenants if t.slug == slug), None)
            label = tenant.name if tenant else slug
        return [Chip(self.label, label, self.keys)]


@dataclass(frozen=True)
class RefFilter(Filter):
    """A platform id (an actor's): the text or, on MongoDB, the ObjectId form."""

    def condition(self, value: str, scope: Scope, alias: str) -> Q:
        return ref_condition(self.facet, value, alias=alias)

    def chips(self, params: Any, ctx: ChipContext) -> list[Chip]:
        value = getattr(params, self.attr)
        if not value:
            return []
        name = next((r.entry.actor_name for r in ctx.rows if r.entry.actor_id == value), "")
        return [Chip(self.label, name or value, self.keys)]


@dataclass(frozen=True)
class ChoiceFilter(Filter):
    """One of a fixed set of values (the actor types)."""

    choices: tuple[str, ...] = ()

    def check(self, value: str) -> str:
        if value and value not in self.choices:
            raise InvalidParams(
                f"{self.key!r} must be one of {', '.join(self.choices)}; got {value!r}."
            )
        return value


@dataclass(frozen=True)
class ResourceTypeFilter(Filter):
    """A resource type; its exclusion takes ``TYPE``, ``TYPE/ID`` or ``/ID`` (one
    resource, as ``resource:`` in the search box)."""

    @property
    def exclude_label(self) -> str:
        return "Not resource"

    def check_excluded(self, raw: str) -> str:
        raw = raw.strip()
        if "/" not in raw:
            return super().check_excluded(raw)
        kind, _, ident = raw.partition("/")
        kind = super().check_excluded(kind) if kind else ""
        ident = RESOURCE_ID.check_excluded(ident)
        if not ident:
            raise InvalidParams(f"{raw!r} needs a resource id after the slash.")
        return f"{kind}/{ident}"

    def excluded_condition(self, value: str, scope: Scope, alias: str) -> Q:
        if "/" not in value:
            return self.condition(value, scope, alias)
        kind, _, ident = value.partition("/")
        return Q(resource_id=ident, **({"resource_type": kind} if kind else {}))

    def chips(self, params: Any, ctx: ChipContext) -> list[Chip]:
        if params.resource_type and params.resource_id:
            value = f"{params.resource_type}/{params.resource_id}"
            return [Chip("Resource", value, (self.key, RESOURCE_ID.key))]
        return super().chips(params, ctx)


@dataclass(frozen=True)
class ResourceIdFilter(Filter):
    def chips(self, params: Any, ctx: ChipContext) -> list[Chip]:
        # With a resource type, the type's chip says both.
        return [] if params.resource_type else super().chips(params, ctx)


@dataclass(frozen=True)
class TraceFilter(Filter):
    def check(self, value: str) -> str:
        trace_id = value.lower()
        if trace_id and (not TRACE_ID_RE.match(trace_id) or set(trace_id) == {"0"}):
            raise InvalidParams("'trace' must be a trace id: 32 hex digits, not all zero.")
        return trace_id


@dataclass(frozen=True)
class EntryFilter(Filter):
    """One entry by its id (investigating by identifier: ``id:`` in the search box)."""

    def check(self, value: str) -> str:
        if value and not ENTRY_ID_RE.match(value):
            raise InvalidParams(
                f"'id' must be an entry id (letters, digits, - and _), got {value!r}."
            )
        return value

    def condition(self, value: str, scope: Scope, alias: str) -> Q:
        return Q(pk=value)


def _date(query: QueryDict, key: str) -> date | None:
    value = text_value(query, key, max_length=10)
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


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


@dataclass(frozen=True)
class PeriodFilter(Filter):
    """Time: the ``range`` preset, or ``from``/``to`` days in the viewer's time zone
    (``to`` inclusive), which replace the preset when given."""

    from_key: str = "from"
    to_key: str = "to"

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, self.from_key, self.to_key)

    @property
    def exclude_key(self) -> str:
        return ""  # a period is one span: created:<… and created:>… say what is left

    def parse(self, query: QueryDict) -> dict[str, Any]:
        range_ = text_value(query, self.key, max_length=8)
        if range_ and range_ not in RANGES:
            raise InvalidParams(f"'range' must be one of {', '.join(RANGES)}; got {range_!r}.")
        date_from, date_to = _date(query, self.from_key), _date(query, self.to_key)
        if date_from and date_to and date_from > date_to:
            raise InvalidParams("'from' is after 'to': the date range is empty.")
        return {
            "range": range_ or DEFAULT_RANGE,
            "range_given": bool(range_),
            "date_from": date_from,
            "date_to": date_to,
        }

    def explicit(self, params: Any) -> dict[str, str]:
        # From/To replace the preset: a URL never says both, so the Period control
        # and the status line can say "Custom dates" without contradiction.
        result = {}
        if params.range_given and not params.custom_dates:
            result[self.key] = params.range
        if params.date_from:
            result[self.from_key] = params.date_from.isoformat()
        if params.date_to:
            result[self.to_key] = params.date_to.isoformat()
        return result

    def apply(self, qs: QuerySet, params: Any, scope: Scope, now: datetime) -> QuerySet:
        if params.custom_dates:
            if params.date_from:
                qs = qs.filter(created_at__gte=local_midnight(params.date_from))
            if params.date_to:
                qs = qs.filter(created_at__lt=local_midnight(params.date_to + timedelta(days=1)))
            return qs
        span = RANGES[params.range]
        return qs if span is None else qs.filter(created_at__gte=now - span)

    def chips(self, params: Any, ctx: ChipContext) -> list[Chip]:
        return []  # the status line says the period


SEARCH = SearchFilter(
    key="q", label="Search", control="auditui/controls/search.jinja", max_length=MAX_SEARCH
)
TENANT = TenantFilter(
    key="tenant",
    label="Tenant",
    qualifier="tenant",
    facet="tenant_id",
    control="auditui/controls/tenant.jinja",
    max_length=100,
)
ACTION = Filter(
    key="action",
    label="Action",
    qualifier="action",
    facet="action",
    control="auditui/controls/action.jinja",
)
ACTOR = RefFilter(
    key="actor",
    label="Actor",
    qualifier="actor",
    facet="actor_id",
    control="auditui/controls/actor.jinja",
)
ACTOR_TYPE = ChoiceFilter(
    key="actor_type",
    label="Actor type",
    qualifier="type",
    facet="actor_type",
    control="auditui/controls/actor_type.jinja",
    choices=ACTOR_TYPES,
    max_length=16,
)
RESOURCE_TYPE = ResourceTypeFilter(
    key="resource_type",
    label="Resource type",
    qualifier="resource",
    facet="resource_type",
    control="auditui/controls/resource_type.jinja",
)
RESOURCE_ID = ResourceIdFilter(
    key="resource_id", label="Resource id", facet="resource_id", max_length=128
)
TRACE = TraceFilter(key="trace", label="Trace", qualifier="trace", facet="trace_id", max_length=32)
ENTRY = EntryFilter(key="id", field="entry_id", label="Entry", qualifier="id", max_length=64)
PERIOD = PeriodFilter(
    key="range", label="Period", qualifier="created", control="auditui/controls/period.jinja"
)

# The order of the controls on the list and of the chips above the results.
FILTERS: tuple[Filter, ...] = (
    SEARCH,
    TENANT,
    ACTION,
    ACTOR,
    ACTOR_TYPE,
    RESOURCE_TYPE,
    RESOURCE_ID,
    TRACE,
    ENTRY,
    PERIOD,
)
CHIP_ORDER: tuple[Filter, ...] = (
    SEARCH,
    TENANT,
    ACTOR,
    ACTOR_TYPE,
    ACTION,
    RESOURCE_TYPE,
    RESOURCE_ID,
    TRACE,
    ENTRY,
)
# The order of the keys in the list's URLs (links, cursors, the export record).
URL_ORDER: tuple[Filter, ...] = (
    ACTION,
    ACTOR,
    ACTOR_TYPE,
    RESOURCE_TYPE,
    RESOURCE_ID,
    TENANT,
    PERIOD,
    SEARCH,
    TRACE,
    ENTRY,
)
# Every filter's query-string keys, then their exclusions' (``not_action``).
EXCLUDE_KEYS: tuple[str, ...] = tuple(f.exclude_key for f in FILTERS if f.exclude_key)
FILTER_KEYS: tuple[str, ...] = tuple(key for f in FILTERS for key in f.keys) + EXCLUDE_KEYS
# The AuditFacet columns that filter choices are read from.
FACET_FIELDS = frozenset(
    {f.facet for f in FILTERS if f.facet and f.facet not in ("resource_id", "trace_id")}
)
