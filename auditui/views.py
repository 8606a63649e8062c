"""The audit-log screens: thin views over ``auditui.query``.

Every view of an app is the same generic view combined with that app's scope
mixin (``auditui.scopes``), so list, row fragments, detail and export all read
through one scoped queryset. An htmx request gets a fragment and a plain
request the full page at the same URL (``Vary: HX-Request``); htmx's
history-restore request gets the full page.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import connections
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template import engines
from django.template.context import make_context
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.views import View

from auditui import diff, export, links, stored
from auditui.apps_registry import APPS, host_of_app
from auditui.errors import InvalidParams
from auditui.filters import (
    ACTION,
    ACTOR,
    DEFAULT_RANGE,
    EXCLUDE_KEYS,
    FILTER_KEYS,
    FILTERS,
    PERIOD,
    PLATFORM_TENANT,
    RANGE_LABELS,
    RESOURCE_ID,
    RESOURCE_TYPE,
    TENANT,
    resolve_tenant,
)
from auditui.integrity import integrity_url
from auditui.paging import CURSOR_VAR, SINCE_VAR, Cursor, encode_cursor, entries_since, iter_entries
from auditui.query import (
    AuditChangeList,
    FilterChoices,
    Params,
    resource_history,
    tenants_by_ref,
)
from auditui.rows import (
    FilterLinks,
    HistoryItem,
    Row,
    actor_icon,
    actor_options_markup,
    cell_times,
    chips,
    period_label,
    row_times,
    short_description,
    tenant_label,
)
from auditui.scopes import (
    DashboardScopeMixin,
    ManageScopeMixin,
    PortalScopeMixin,
    Scope,
)
from auditui.search import box_text
from auditui.templatetags.audit_tags import render_fragment
from dmobs import foreground
from dmobs.audit import audit_log
from dmobs.models import AuditLog, Tenant
from dmobs.observability import metrics
from dmobs.records import STORED_NAMES, instance_to_record
from dmobs.vocabulary import CSV_TRIGGERS

EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "ndjson": ("application/x-ndjson; charset=utf-8", "ndjson"),
}
# The live tail's new position and how many entries a poll found (read by audit.js).
TAIL_CURSOR_HEADER = "X-Tail-Cursor"
TAIL_COUNT_HEADER = "X-Tail-Count"
# Sorts before every entry id (and is a valid ObjectId on MongoDB): a cursor at a
# moment rather than after an entry.
LOWEST_ID = "0" * 24


def is_fragment_request(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def render_page(
    request: HttpRequest, template_name: str, context: dict, status: int | None = None
) -> HttpResponse:
    """``render()`` for the screens' Django templates, with the template context let
    go at once. Django's ``RequestContext`` refers to itself (each ``ContextDict``
    points back at it), so what it holds (the page's rows, entries, choices) would
    otherwise wait for the cycle collector: a collection of ~20,000 objects every few
    dozen list pages, the slowest request of each run (bench/NOTES.md)."""
    template = engines["django"].get_template(template_name)
    page = make_context(context, request, autoescape=template.backend.engine.autoescape)
    try:
        content = template.template.render(page)
    finally:
        page.dicts.clear()
    return HttpResponse(content, status=status)


def bad_request(request: HttpRequest, message: str, *, fragment: bool = False) -> HttpResponse:
    template = "auditui/_error.html" if fragment else "400.html"
    response = render_page(request, template, {"message": message}, status=400)
    patch_vary_headers(response, ("HX-Request",))
    return response


class AuditScreenMixin:
    """URLs and shared context of one app's screen (used with a scope mixin)."""

    def head(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Declared, so Django's View.setup() does not store ``self.head = self.get``:
        # a bound method of the view on the view is a reference cycle per request.
        return self.get(request, *args, **kwargs)

    def app_url(self, name: str, *args: str) -> str:
        return reverse(f"{self.get_audit_app().name}:{name}", args=args)

    def rows(
        self,
        entries: list[AuditLog],
        *,
        links: FilterLinks,
        known: list[Tenant] | tuple = (),
    ) -> list[Row]:
        """Display rows; tenant names come from ``known`` tenants where they are
        all there (the scope's own, or the filter choices), else one query."""
        refs = {e.tenant_id for e in entries if e.tenant_id}
        tenants = {t.ref_id: t for t in known}
        if not refs <= tenants.keys():
            tenants = tenants_by_ref(refs)
        # One reverse() for the page: the detail URL is this prefix + id + "/",
        # with the list's filters so the entry's page links back to this view.
        prefix = self.app_url("detail", "0").removesuffix("0/")
        query = links.params.query_string()
        suffix = f"/?{query}" if query else "/"
        tz = timezone.get_current_timezone()  # once, not per row
        return [
            Row(
                e,
                tenant_label(e, tenants),
                f"{prefix}{quote(str(e.pk), safe='')}{suffix}",
                icon=actor_icon(e.actor_type or ""),
                # Text fields may be None in an entry other writers stored
                # (auditui.stored.tidy_entry): the row still reads as a sentence.
                description=short_description(e.description or "(no description)"),
                actor_url=links.add(ACTOR.key, e.actor_id),
                action_url=links.add(ACTION.key, e.action),
                tenant_url=links.tenant(e, tenants),
                **cell_times(e.created_at, tz),
            )
            for e in entries
        ]

    def screen_context(self, scope: Scope) -> dict:
        return {
            "scope": scope,
            "app": scope.app,
            "audience": scope.audience or scope.app.audience,
            "list_url": self.app_url("list"),
            "viewer_tz": timezone.get_current_timezone_name(),
        }

    def changelist(self, request: HttpRequest) -> AuditChangeList:
        """The screen's read: its scope, the request's query and the keys it takes."""
        return AuditChangeList(self.get_audit_scope(), request.GET, known=self.known_params)


# Query keys a search-box qualifier sets (the box replaces them when it is submitted).
QUALIFIED_KEYS = (
    frozenset(key for f in FILTERS if f.qualifier for key in f.keys if key != PERIOD.key)
    | {RESOURCE_ID.key}
    | frozenset(EXCLUDE_KEYS)
)


def search_sync_headers(response: HttpResponse, list_url: str, params: Params) -> None:
    """Keep the search box and the controls in step after an htmx filter request
    (audit.js): the view's canonical URL (pushed once, in place of the request's),
    its parameters and the box's text. Percent-encoded: headers are Latin-1."""
    query = params.query_string()
    response["HX-Push-Url"] = f"{list_url}?{query}" if query else list_url
    response["X-Search-Params"] = query
    response["X-Search-Box"] = quote(box_text(params), safe="")
    response["X-Search-Words"] = quote(params.q, safe="")


def tail_settled_until() -> datetime:
    return timezone.now() - timedelta(seconds=settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS)


class AuditListView(AuditScreenMixin, View):
    """The filterable list; with htmx, the results (filters changed), more rows
    (cursor) or the live tail's new rows (since)."""

    known_params = AuditChangeList.LIST_KEYS

    def get(self, request: HttpRequest) -> HttpResponse:
        cl = self.changelist(request)
        scope = cl.scope
        fragment = is_fragment_request(request)
        try:
            params = cl.params
            cl.queryset  # noqa: B018 (each filter checks its value here)
            since = cl.since
            since_value = request.GET.get(SINCE_VAR, "").strip() if since else ""
        except InvalidParams as exc:
            return bad_request(request, str(exc), fragment=fragment)

        list_url = self.app_url("list")
        links = FilterLinks(list_url, params, scope)
        if since is not None and fragment:
            return self.tail(
                cl.queryset.defer("before", "after"), since=since, links=links, scope=scope
            )
        page = cl.page()
        more_rows = fragment and params.cursor is not None
        count = count_more = None
        if not more_rows:
            # Before the choices: its round trip also reads the facet version they need.
            count, count_more = cl.capped_count(for_choices=not fragment)
        choices = None
        if not fragment:
            choices = cl.choices()
        known = choices.tenants if choices else (scope.tenants or ())
        rows = self.rows(page.entries, links=links, known=known)
        if rows and params.cursor is None:
            tail_cursor = encode_cursor(rows[0].entry.created_at, str(rows[0].entry.pk))
        else:
            tail_cursor = since_value or encode_cursor(timezone.now(), LOWEST_ID)
        context = {
            **self.screen_context(scope),
            "params": params,
            "rows": rows,
            "next_cursor": page.next_cursor,
            "more_url": (
                f"{list_url}?{params.query_string(cursor=page.next_cursor)}"
                if page.next_cursor
                else ""
            ),
            "columns": 4 if scope.show_tenant else 3,
        }
        if more_rows:
            return self.rows_response(context)
        query = params.query_string()
        context.update(
            fragment=fragment,
            count=count,
            count_more=count_more,
            count_label=f"{count:,}{'+' if count_more else ''}",
            period=period_label(params),
            chips=chips(params, links, rows, scope),
            export_csv=self.export_url(params, "csv"),
            export_ndjson=self.export_url(params, "ndjson"),
            tail_url=f"{list_url}?{query}" if query else list_url,
            tail_cursor=tail_cursor,
            tail_twin_url=f"{list_url}?{params.query_string(since=tail_cursor)}",
            since=since_value if since is not None else "",
        )
        if fragment:
            # The results alone (htmx): Jinja2 through and through, no Django template.
            html = render_fragment("auditui/_results.jinja", context, request)
            response = HttpResponse(html)
            search_sync_headers(response, list_url, params)
        else:
            context.update(
                choices=choices,
                tenant_choices=self.tenant_choices(choices, scope),
                range_choices=(
                    ([("", "Custom dates")] if params.custom_dates else [])
                    + list(RANGE_LABELS.items())
                ),
                range_selected="" if params.custom_dates else params.range,
                default_range=DEFAULT_RANGE,
                actor_options=actor_options_markup(choices, params, scope),
                action_choices=[(a, a) for a in choices.actions],
                actor_type_choices=[(a, a) for a in choices.actor_types],
                resource_type_choices=[(r, r) for r in choices.resource_types],
                is_continued=params.cursor is not None,
                first_page_url=f"{list_url}?{query}" if query else list_url,
                controls=[f.control for f in FILTERS if f.control and scope.offers(f)],
                hidden_filters=[
                    (key, value)
                    for key, value in params.filter_pairs()
                    if key not in scope.controls
                ],
                box_text=box_text(params),
                qualified_keys=QUALIFIED_KEYS,
                live_interval_ms=int(settings.DMOBS_LIVE_TAIL_SECONDS * 1000),
                verify_url=integrity_url(scope) or "",
            )
            response = render_page(request, "auditui/list.html", context)
        patch_vary_headers(response, ("HX-Request",))
        return response

    def tail(self, listed, *, since: Cursor, links: FilterLinks, scope: Scope) -> HttpResponse:
        """One live-tail poll: the entries newer than ``since``, newest first, for the top
        of the table; 204 when there are none. The new position is a response header."""
        found = entries_since(listed, since=since, until=tail_settled_until())
        if not found:
            response = HttpResponse(status=204)
            response[TAIL_CURSOR_HEADER] = encode_cursor(since.created_at, since.id)
            response[TAIL_COUNT_HEADER] = "0"
        else:
            newest = found[-1]
            found.reverse()
            response = self.rows_response(
                {
                    "rows": self.rows(found, links=links, known=scope.tenants or ()),
                    "scope": scope,
                    "columns": 4 if scope.show_tenant else 3,
                    "more_url": "",
                    "live": True,
                }
            )
            response[TAIL_CURSOR_HEADER] = encode_cursor(newest.created_at, str(newest.pk))
            response[TAIL_COUNT_HEADER] = str(len(found))
        response["Cache-Control"] = "no-store"
        patch_vary_headers(response, ("HX-Request",))
        return response

    def rows_response(self, context: dict) -> HttpResponse:
        """More rows (Load more, the live tail): the rows fragment alone."""
        html = render_fragment(
            "auditui/_rows.jinja",
            {
                "rows": context["rows"],
                "show_tenant": context["scope"].show_tenant,
                "columns": context["columns"],
                "more_url": context["more_url"],
                "live": context.get("live", False),
            },
        )
        response = HttpResponse(html)
        patch_vary_headers(response, ("HX-Request",))
        return response

    def tenant_choices(self, choices: FilterChoices, scope: Scope) -> list[tuple[str, str]]:
        tenants = [(t.slug, t.name) for t in choices.tenants]
        if scope.sees_platform:
            tenants.append((PLATFORM_TENANT, "Platform"))
        return tenants

    def export_url(self, params: Params, fmt: str) -> str:
        return f"{self.app_url('export')}?{params.query_string(format=fmt)}"


class AuditDetailView(AuditScreenMixin, View):
    """One entry: the expanded row (htmx) or its own page. The list's filters ride
    along in the query string, so the page's back link returns to the same view."""

    known_params = frozenset(FILTER_KEYS)

    def get(self, request: HttpRequest, entry_id: str) -> HttpResponse:
        cl = self.changelist(request)
        scope = cl.scope
        fragment = is_fragment_request(request)
        try:
            params = cl.params
        except InvalidParams as exc:
            return bad_request(request, str(exc), fragment=fragment)
        entry = cl.entry(entry_id)
        if entry is None:
            raise Http404("No such entry in this view.")
        tenants = tenants_by_ref({entry.tenant_id})
        try:
            trace = links.trace_links(entry.trace_id, at=entry.created_at)
        except (OverflowError, ValueError):  # an hour around year 1 or 9999
            trace = links.trace_links(entry.trace_id)
        list_url = self.app_url("list")
        filters = FilterLinks(list_url, params, scope)
        query = params.query_string()
        # A resource id is only unique within its tenant: the history is that tenant's.
        history = {RESOURCE_TYPE.key: entry.resource_type, RESOURCE_ID.key: entry.resource_id}
        if entry.tenant_id and entry.tenant_id in tenants:
            history[TENANT.key] = tenants[entry.tenant_id].slug
        elif not entry.tenant_id and scope.sees_platform:
            history[TENANT.key] = PLATFORM_TENANT
        # An entry another writer stored without a resource has no history to show.
        has_resource = bool(entry.resource_type and entry.resource_id)
        history_query = urlencode(history) if has_resource else ""
        context = {
            **self.screen_context(scope),
            "entry": entry,
            "times": row_times(entry.created_at),
            "stored_created_at": (
                stored.shortened(stored.display_text(str(entry.stored_created_at)), 200)
                if entry.created_at is None and entry.stored_created_at is not None
                else ""
            ),
            "tenant_label": tenant_label(entry, tenants),
            "diff": diff.diff_view(entry.before, entry.after),
            "resource_url": links.resource_url(
                app=scope.app.name,
                resource_type=entry.resource_type or "",
                resource_id=entry.resource_id or "",
            ),
            "trace": trace,
            # Only for a well-formed trace id (``trace`` is None otherwise).
            "trace_entries_url": filters.trace(entry.trace_id) if trace else "",
            "detail_url": self.app_url("detail", str(entry.pk)) + (f"?{query}" if query else ""),
            "back_url": filters.url(query),
            "history_url": f"{self.app_url('history')}?{history_query}" if has_resource else "",
            "filter_actor_url": filters.add(ACTOR.key, entry.actor_id),
            "filter_action_url": filters.add(ACTION.key, entry.action),
            "filter_resource_url": filters.resource(entry),
            "filter_tenant_url": filters.tenant(entry, tenants),
        }
        template = "auditui/_detail.html" if fragment else "auditui/detail.html"
        response = render_page(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response


class AuditHistoryView(AuditScreenMixin, View):
    """ "History of this resource": every entry of one resource in the viewer's scope,
    oldest first, each with its diff; keyset pages of 50 ("Show later changes")."""

    known_params = frozenset({RESOURCE_TYPE.key, RESOURCE_ID.key, TENANT.key, CURSOR_VAR})

    def get(self, request: HttpRequest) -> HttpResponse:
        scope = self.get_audit_scope()
        fragment = is_fragment_request(request)
        try:
            params = self.changelist(request).params
            if not (params.resource_type and params.resource_id):
                raise InvalidParams(
                    "A resource's history needs both 'resource_type' and 'resource_id'."
                )
            tenant = None
            if params.tenant:
                tenant = resolve_tenant(scope=scope, slug=params.tenant)
            page = resource_history(
                scope=scope,
                resource_type=params.resource_type,
                resource_id=params.resource_id,
                tenant=tenant,
                platform=params.tenant == PLATFORM_TENANT and tenant is None,
                cursor=params.cursor,
            )
        except InvalidParams as exc:
            return bad_request(request, str(exc), fragment=fragment)
        tenants = tenants_by_ref({e.tenant_id for e in page.entries})
        prefix = self.app_url("detail", "0").removesuffix("0/")
        tz = timezone.get_current_timezone()
        items = [
            HistoryItem(
                e,
                diff.diff_view(e.before, e.after),
                f"{prefix}{quote(str(e.pk), safe='')}/",
                tenant_label(e, tenants),
                icon=actor_icon(e.actor_type or ""),
                **cell_times(e.created_at, tz),
            )
            for e in page.entries
        ]
        base = {RESOURCE_TYPE.key: params.resource_type, RESOURCE_ID.key: params.resource_id}
        if params.tenant:
            base[TENANT.key] = params.tenant
        list_url = self.app_url("list")
        context = {
            **self.screen_context(scope),
            "items": items,
            "resource_type": params.resource_type,
            "resource_id": params.resource_id,
            "tenant_name": (
                "" if not params.tenant else "Platform" if tenant is None else tenant.name
            ),
            "resource_name": next(
                (e.resource_name for e in reversed(page.entries) if e.resource_name), ""
            ),
            "more_url": (
                f"{self.app_url('history')}?{urlencode({**base, CURSOR_VAR: page.next_cursor})}"
                if page.next_cursor
                else ""
            ),
            "is_continued": params.cursor is not None,
            "first_url": f"{self.app_url('history')}?{urlencode(base)}",
            "list_filter_url": f"{list_url}?{urlencode({**base, PERIOD.key: 'all'})}",
        }
        if fragment:
            response = HttpResponse(
                render_fragment(
                    "auditui/_history_items.jinja",
                    {
                        "items": items,
                        "show_tenant": scope.show_tenant,
                        "more_url": context["more_url"],
                    },
                )
            )
        else:
            response = render_page(request, "auditui/history.html", context)
        patch_vary_headers(response, ("HX-Request",))
        return response


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula.

    JSON states are written whole, whatever their depth or size (``stored.dumps``);
    text that cannot be encoded (a lone surrogate) shows U+FFFD.
    """
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = stored.dumps(value, allow_nan=True)
    text = stored.display_text(str(value))
    if text.startswith(CSV_TRIGGERS):
        return "'" + text
    return text


def export_record(entry: AuditLog) -> dict:
    """The stored names and values of a tidied entry, secrets masked (any depth)."""
    record = instance_to_record(entry)
    record["before"] = stored.masked(record["before"])
    record["after"] = stored.masked(record["after"])
    return record


def csv_lines(entries: Iterator[AuditLog]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(STORED_NAMES)
    yield take()
    for entry in entries:
        record = export_record(entry)
        writer.writerow([csv_cell(record[name]) for name in STORED_NAMES])
        yield take()


def ndjson_lines(entries: Iterator[AuditLog]) -> Iterator[str]:
    # stored.dumps: any depth; json_export_text: lone surrogates as \u escapes,
    # so each line is valid UTF-8 JSON carrying the exact stored value.
    for entry in entries:
        yield stored.json_export_text(stored.dumps(export_record(entry))) + "\n"


def _give_way() -> None:
    """Before an export reads its next chunk: wait while the server's other
    requests are in flight (``dmobs.foreground``), as the PostgreSQL CSV does."""
    foreground.wait_for_quiet(export.GIVE_WAY_SECONDS)


class AuditExportView(AuditScreenMixin, View):
    """The current filtered view as CSV or NDJSON, streamed in keyset chunks."""

    known_params = frozenset(FILTER_KEYS) | {CURSOR_VAR, "format"}

    def get(self, request: HttpRequest) -> HttpResponse:
        cl = self.changelist(request)
        scope = cl.scope
        fmt = request.GET.get("format", "")
        if fmt not in EXPORT_FORMATS:
            return bad_request(request, "'format' must be csv or ndjson.")
        try:
            params = cl.params
            entries = cl.queryset
        except InvalidParams as exc:
            return bad_request(request, str(exc))

        content_type, extension = EXPORT_FORMATS[fmt]
        # Bulk work: the server's other requests do not wait for this one, its
        # chunks wait for them (dmobs.foreground).
        foreground.background(request)
        if fmt == "csv" and connections[entries.db].vendor == "postgresql":
            # Chunks rendered at database speed (auditui.export). The header and
            # the first chunk are read before the export is recorded, below.
            counts: list[int] = []  # rows per chunk, as handed on
            chunks = export.csv_chunks(entries, on_rows=counts.append)
            head = [next(chunks), next(chunks, b"")]
            self.record_export(scope, params, fmt)

            def counted() -> Iterator[bytes]:
                try:
                    yield from itertools.chain(head, chunks)
                finally:
                    metrics.record_export(app=scope.app.name, format=fmt, rows=sum(counts))

            lines = counted()
        else:
            # Start reading before recording the export: the keyset walk runs
            # newest to oldest, so the export's own entry is never part of it.
            rows = iter_entries(entries, before_chunk=_give_way)
            first = next(rows, None)
            self.record_export(scope, params, fmt)

            def all_rows() -> Iterator[AuditLog]:
                count = 0
                try:
                    if first is not None:
                        count += 1
                        yield first
                        for row in rows:
                            count += 1
                            yield row
                finally:
                    metrics.record_export(app=scope.app.name, format=fmt, rows=count)

            lines = csv_lines(all_rows()) if fmt == "csv" else ndjson_lines(all_rows())
        response = StreamingHttpResponse(lines, content_type=content_type)
        response["Content-Disposition"] = self.content_disposition(scope, extension)
        response["Cache-Control"] = "private, no-store"
        return response

    def head(self, request: HttpRequest) -> HttpResponse:
        """The export's headers, without running it or recording an ``exported``
        entry (Django would answer HEAD with ``get()``, export and audit included)."""
        cl = AuditChangeList(self.get_audit_scope(), request.GET, known=FILTER_KEYS + ("format",))
        scope = cl.scope
        fmt = request.GET.get("format", "")
        if fmt not in EXPORT_FORMATS:
            return bad_request(request, "'format' must be csv or ndjson.")
        try:
            cl.queryset  # noqa: B018 (checks every filter, like the export itself)
        except InvalidParams as exc:
            return bad_request(request, str(exc))
        content_type, extension = EXPORT_FORMATS[fmt]
        response = HttpResponse(content_type=content_type)
        response["Content-Disposition"] = self.content_disposition(scope, extension)
        response["Cache-Control"] = "private, no-store"
        return response

    @staticmethod
    def content_disposition(scope: Scope, extension: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f'attachment; filename="audit-log-{scope.app.name}-{stamp}.{extension}"'

    def record_export(self, scope: Scope, params: Params, fmt: str) -> None:
        """One ``exported`` entry per tenant whose entries the export can contain."""
        user = self.request.user
        if scope.tenants is None:
            tenant_refs: list[str | None] = [None]
            if params.tenant and params.tenant != PLATFORM_TENANT:
                tenant_refs = [t.ref_id for t in Tenant.objects.filter(slug=params.tenant)]
        else:
            tenants = [t for t in scope.tenants if not params.tenant or t.slug == params.tenant]
            tenant_refs = [t.ref_id for t in tenants]
        name = user.get_full_name() or user.get_username()
        for tenant_ref in tenant_refs:
            audit_log(
                tenant_id=tenant_ref,
                actor_type="human",
                actor_id=user.ref_id,
                actor_name=name,
                action="exported",
                resource_type="audit_log",
                resource_id=scope.app.name,
                resource_name=f"{scope.app.label} audit log",
                description=f"{name} exported the {scope.app.label} audit log as {fmt.upper()}",
                after={"app": scope.app.name, "format": fmt, "filters": params.filters()},
            )


# The twelve screens: each app's scope with each generic view.


class DashboardAuditList(DashboardScopeMixin, AuditListView):
    pass


class DashboardAuditDetail(DashboardScopeMixin, AuditDetailView):
    pass


class DashboardAuditExport(DashboardScopeMixin, AuditExportView):
    pass


class DashboardAuditHistory(DashboardScopeMixin, AuditHistoryView):
    pass


class PortalAuditList(PortalScopeMixin, AuditListView):
    pass


class PortalAuditDetail(PortalScopeMixin, AuditDetailView):
    pass


class PortalAuditExport(PortalScopeMixin, AuditExportView):
    pass


class PortalAuditHistory(PortalScopeMixin, AuditHistoryView):
    pass


class ManageAuditList(ManageScopeMixin, AuditListView):
    pass


class ManageAuditDetail(ManageScopeMixin, AuditDetailView):
    pass


class ManageAuditExport(ManageScopeMixin, AuditExportView):
    pass


class ManageAuditHistory(ManageScopeMixin, AuditHistoryView):
    pass


SCREENS: dict[str, dict[str, type[View]]] = {
    "dashboard": {
        "list": DashboardAuditList,
        "detail": DashboardAuditDetail,
        "export": DashboardAuditExport,
        "history": DashboardAuditHistory,
    },
    "portal": {
        "list": PortalAuditList,
        "detail": PortalAuditDetail,
        "export": PortalAuditExport,
        "history": PortalAuditHistory,
    },
    "manage": {
        "list": ManageAuditList,
        "detail": ManageAuditDetail,
        "export": ManageAuditExport,
        "history": ManageAuditHistory,
    },
}


@dataclass(frozen=True)
class AppLink:
    label: str
    audience: str
    url: str


def app_link_url(request: HttpRequest, app: str) -> str:
    """The app's list URL: on this host when it is served here, else on the app's host."""
    try:
        return reverse(f"{app}:list")
    except NoReverseMatch:
        host = host_of_app(app)
        return f"{request.scheme}://{host}/{APPS[app].path}"


def openable_apps(request: HttpRequest) -> list[AppLink]:
    result = []
    for name, screens in SCREENS.items():
        view = screens["list"]()
        view.setup(request)
        if view.get_denial_reason() is None:
            app = APPS[name]
            result.append(AppLink(app.label, app.audience, app_link_url(request, name)))
    return result


class HomeView(LoginRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "auditui/home.html", {"apps": openable_apps(request)})


home = HomeView.as_view()
