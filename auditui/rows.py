"""What the list's rows and controls show, computed in Python for the templates.

A row's display values (its times in the viewer's zone, its labels, the
click-to-filter links), the active filters' chips, and the actor control's
options. The markup is the templates' (``templates/jinja2/auditui/``); this
module only prepares the values they print, once per page where a value repeats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from auditui.diff import DiffView
from auditui.filters import (
    CHIP_ORDER,
    PERIOD,
    PLATFORM_TENANT,
    RANGE_LABELS,
    RESOURCE_ID,
    RESOURCE_TYPE,
    TENANT,
    TRACE,
    ChipContext,
)
from auditui.query import FilterChoices, Params
from auditui.scopes import Scope
from auditui.templatetags.audit_tags import render_fragment
from dmobs.models import AuditLog, Tenant


@dataclass(frozen=True, kw_only=True)
class Shown:
    """What a listed entry shows besides its own fields, computed once in Python:
    its time cell (``cell_times``) and actor icon. Template filters per cell were
    most of a list page's time."""

    time_iso: str = ""
    time_utc: str = ""
    day: str = ""
    clock: str = ""
    offset: str = ""
    icon: str = ""


@dataclass(frozen=True)
class Row(Shown):
    """One entry of the list."""

    entry: AuditLog
    tenant_label: str
    detail_url: str
    description: str = ""
    # Click-to-filter: the list with this row's actor / action / tenant added.
    actor_url: str = ""
    action_url: str = ""
    tenant_url: str = ""


@dataclass(frozen=True)
class HistoryItem(Shown):
    """One entry of a resource's timeline, with its diff."""

    entry: AuditLog
    diff: DiffView
    detail_url: str
    tenant_label: str


@dataclass(frozen=True)
class Chip:
    """One active filter above the results, with the link that removes it."""

    label: str
    value: str
    remove_url: str


@functools.lru_cache(maxsize=8)
def actor_icon(actor_type: str) -> str:
    """The actor icon's markup, rendered once per type (not once per row)."""
    return render_to_string("auditui/_actor_icon.html", {"type": actor_type})


def row_times(
    created_at: datetime | None, *, tz: tzinfo | None = None, full: bool = True
) -> dict[str, str]:
    """What the time cell shows: the viewer's day and clock, the UTC offset and the
    UTC timestamp (same output as the ``date``/``utc``/``utc_offset`` filters);
    with ``full`` also the full local time (the detail's).

    ``tz``: the viewer's time zone (default: the active one), looked up once by a
    caller that shows many rows. A time within hours of year 1 or 9999 may have no
    local equivalent in the viewer's zone (year 0 or 10000): it is shown in UTC
    then, never an error.
    """
    if created_at is None:
        times = {"time_iso": "", "time_utc": "", "day": "no date", "clock": "", "offset": ""}
        return {**times, "local": ""} if full else times
    utc = created_at.astimezone(UTC)
    try:
        local = created_at.astimezone(tz or timezone.get_current_timezone())
    except (OverflowError, ValueError):
        local = utc
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes:
        hours, mins = divmod(abs(minutes), 60)
        label = f"UTC{'+' if minutes > 0 else '-'}{hours:02d}:{mins:02d}"
    else:
        label = "UTC"
    times = {
        "time_iso": utc.isoformat(),
        "time_utc": (
            f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        ),
        "day": f"{MONTHS[local.month - 1]} {local.day}, {local.year}",
        "clock": f"{local.hour:02d}:{local.minute:02d}",
        "offset": label,
    }
    if full:
        times["local"] = (
            f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        )
    return times


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DESCRIPTION_CHARS = 300


def cell_times(created_at: datetime | None, tz: tzinfo | None = None) -> dict[str, str]:
    """``row_times`` for a row's time cell (the full local time is the detail's)."""
    return row_times(created_at, tz=tz, full=False)


def short_description(text: str) -> str:
    # A text of at most that many code points is never truncated, so most rows skip Truncator.
    return text if len(text) <= DESCRIPTION_CHARS else Truncator(text).chars(DESCRIPTION_CHARS)


def tenant_label(entry: AuditLog, tenants: dict[str, Tenant]) -> str:
    if not entry.tenant_id:
        return "Platform"
    tenant = tenants.get(entry.tenant_id)
    return tenant.name if tenant else entry.tenant_id


class FilterLinks:
    """URLs of the list with one filter added (click-to-filter) or removed (chips).

    Memoised per value: a page's 50 rows share a handful of actors and actions.
    """

    def __init__(self, list_url: str, params: Params, scope: Scope):
        self.list_url = list_url
        self.params = params
        self.scope = scope
        self._memo: dict[tuple, str] = {}

    def url(self, query: str) -> str:
        return f"{self.list_url}?{query}" if query else self.list_url

    def add(self, key: str, value: str | None) -> str:
        if value is None:  # a field another writer left out: nothing to filter on
            return ""
        memo_key = (key, value)
        if memo_key not in self._memo:
            self._memo[memo_key] = self.url(self.params.without(key, **{key: value}))
        return self._memo[memo_key]

    def tenant(self, entry: AuditLog, tenants: dict[str, Tenant]) -> str:
        if not entry.tenant_id:
            return self.add(TENANT.key, PLATFORM_TENANT) if self.scope.sees_platform else ""
        tenant = tenants.get(entry.tenant_id)
        return self.add(TENANT.key, tenant.slug) if tenant else ""

    def resource(self, entry: AuditLog) -> str:
        if not (entry.resource_type and entry.resource_id):
            return ""
        query = self.params.without(
            RESOURCE_TYPE.key,
            RESOURCE_ID.key,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
        )
        return self.url(query)

    def trace(self, trace_id: str) -> str:
        # A trace is narrow and may be older than the period shown: all time.
        return self.url(self.params.without(TRACE.key, *PERIOD.keys, trace=trace_id, range="all"))

    def remove(self, *keys: str) -> str:
        return self.url(self.params.without(*keys))

    def remove_value(self, key: str, value: str) -> str:
        return self.url(self.params.without_value(key, value))


def period_label(params: Params) -> str:
    """What the status line says about time: the preset, or the custom days."""
    if not params.custom_dates:
        return RANGE_LABELS[params.range]
    if params.date_from and params.date_to:
        return f"{params.date_from.isoformat()} to {params.date_to.isoformat()}"
    if params.date_from:
        return f"from {params.date_from.isoformat()}"
    return f"until {params.date_to.isoformat()}"


def actor_option_rows(
    *,
    actors: tuple[tuple[str, str, str], ...],
    actor_tenants: dict[str, tuple[str | None, ...]],
    tenants: tuple[tuple[str, str, str], ...],
    several: bool,
    tenant: str,
    selected: str,
) -> list[tuple[str, str, str, bool]]:
    """(value, label, tenant slugs, hidden) per actor option.

    Where the viewer sees several tenants, the label names the actor's tenants
    (two agents called "Analytics Agent" are told apart), and with a tenant
    filter the options of other tenants are hidden (the script keeps that in
    step when the tenant changes). The selected actor always shows.
    ``tenants``: (ref, slug, name) of the choices' tenants.
    """
    slugs = {ref: slug for ref, slug, _name in tenants}
    names = {ref: name for ref, _slug, name in tenants}
    options = []
    for actor_id, name, kind in actors:
        label = name if kind == "human" else f"{name} ({kind})"
        refs = actor_tenants.get(actor_id, ())
        keys = [PLATFORM_TENANT if ref is None else slugs.get(ref, ref) for ref in refs]
        if several and refs:
            label += " · " + ", ".join(
                "Platform" if ref is None else names.get(ref, ref) for ref in refs
            )
        hidden = bool(tenant and refs and tenant not in keys and actor_id != selected)
        options.append((actor_id, label, " ".join(keys), hidden))
    return options


@functools.lru_cache(maxsize=32)
def _actor_options_markup(
    actors: tuple, actor_tenants: tuple, tenants: tuple, several: bool, tenant: str, selected: str
) -> SafeString:
    options = actor_option_rows(
        actors=actors,
        actor_tenants=dict(actor_tenants),
        tenants=tenants,
        several=several,
        tenant=tenant,
        selected=selected,
    )
    return render_fragment(
        "auditui/_actor_options.jinja", {"options": options, "selected": selected}
    )


def actor_options_markup(choices: FilterChoices, params: Params, scope: Scope) -> SafeString:
    """The actor control's <option>s (``_actor_options.jinja``), kept per process for
    identical inputs: Manage offers hundreds of actors, and building and rendering
    their options was ~1.5 ms of every request while the facet choices they come
    from are kept anyway (``auditui.query``). The key is everything the markup is
    made of (actors, their tenants, the tenants' names, the filter and the
    selection), so a renamed tenant or a new actor shows on the next request.
    """
    return _actor_options_markup(
        tuple(choices.actors),
        tuple(choices.actor_tenants.items()),
        tuple((t.ref_id, t.slug, t.name) for t in choices.tenants),
        scope.several_tenants,
        params.tenant,
        params.actor,
    )


def chips(params: Params, links: FilterLinks, rows: list[Row], scope: Scope) -> list[Chip]:
    """The active filters other than time (the status line says the period); each
    filter says what its chip shows (``auditui.filters``)."""
    context = ChipContext(scope=scope, rows=rows)
    return [
        Chip(
            chip.label,
            chip.value,
            links.remove_value(*chip.drop) if chip.drop else links.remove(*chip.keys),
        )
        for flt in CHIP_ORDER
        for chip in [*flt.chips(params, context), *flt.excluded_chips(params)]
    ]
