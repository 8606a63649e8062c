"""The audit-log screens: thin views over ``auditui.query``.

Every view of an app is the same generic view combined with that app's scope
mixin (``auditui.scopes``), so list, row fragments, detail and export all read
through one scoped queryset. An htmx request gets a fragment and a plain
request the full page at the same URL (``Vary: HX-Request``); htmx's
history-restore request gets the full page.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import connections
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views import View

from auditui import diff, export, links, stored
from auditui.apps_registry import APPS
from auditui.hosts import host_of_app
from auditui.query import (
    RANGE_LABELS,
    InvalidParams,
    Params,
    Scope,
    audit_entries,
    capped_count,
    filter_choices,
    get_entry,
    iter_entries,
    page_entries,
    parse_params,
    tenants_by_ref,
)
from auditui.scopes import (
    AuditScopeMixin,
    DashboardScopeMixin,
    ManageScopeMixin,
    PortalScopeMixin,
)
from dmobs.audit import audit_log
from dmobs.models import AuditLog, Membership, Tenant
from dmobs.observability import metrics
from dmobs.records import STORED_NAMES, instance_to_record
from dmobs.vocabulary import CSV_TRIGGERS

EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "ndjson": ("application/x-ndjson; charset=utf-8", "ndjson"),
}
# Filter controls every screen shows; the scope adds its own (tenant, ...).
VISIBLE_CONTROLS = frozenset({"q", "action", "actor", "range", "from", "to"})


def is_fragment_request(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def bad_request(request: HttpRequest, message: str, *, fragment: bool = False) -> HttpResponse:
    template = "auditui/_error.html" if fragment else "400.html"
    response = render(request, template, {"message": message}, status=400)
    patch_vary_headers(response, ("HX-Request",))
    return response


@dataclass(frozen=True)
class Row:
    entry: AuditLog
    tenant_label: str
    detail_url: str
    # Display values computed once in Python (``row_times``): template filters
    # per cell were most of a list page's time.
    time_iso: str = ""
    time_utc: str = ""
    day: str = ""
    clock: str = ""
    offset: str = ""
    icon: str = ""


@functools.lru_cache(maxsize=8)
def actor_icon(actor_type: str) -> str:
    """The actor icon's markup, rendered once per type (not once per row)."""
    return render_to_string("auditui/_actor_icon.html", {"type": actor_type})


def row_times(created_at: datetime | None) -> dict[str, str]:
    """What the time cell shows: the viewer's day and clock, the UTC offset and the
    UTC timestamp (same output as the ``date``/``utc``/``utc_offset`` filters).

    A time within hours of year 1 or 9999 may have no local equivalent in the
    viewer's zone (year 0 or 10000): it is shown in UTC then, never an error.
    """
    if created_at is None:
        return {"time_iso": "", "time_utc": "", "day": "no date", "clock": "", "offset": ""}
    utc = created_at.astimezone(UTC)
    try:
        local = timezone.localtime(created_at)
    except (OverflowError, ValueError):
        local = utc
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes:
        hours, mins = divmod(abs(minutes), 60)
        label = f"UTC{'+' if minutes > 0 else '-'}{hours:02d}:{mins:02d}"
    else:
        label = "UTC"
    return {
        "time_iso": utc.isoformat(),
        "time_utc": (
            f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        ),
        "day": f"{MONTHS[local.month - 1]} {local.day}, {local.year}",
        "clock": f"{local.hour:02d}:{local.minute:02d}",
        "offset": label,
        "local": (
            f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        ),
    }


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def tenant_label(entry: AuditLog, tenants: dict[str, Tenant]) -> str:
    if not entry.tenant_id:
        return "Platform"
    tenant = tenants.get(entry.tenant_id)
    return tenant.name if tenant else entry.tenant_id


class AuditScreenMixin:
    """URLs and shared context of one app's screen (used with a scope mixin)."""

    def app_url(self, name: str, *args: str) -> str:
        return reverse(f"{self.get_audit_app().name}:{name}", args=args)

    def rows(self, entries: list[AuditLog], *, known: list[Tenant] | tuple = ()) -> list[Row]:
        """Display rows; tenant names come from ``known`` tenants where they are
        all there (the scope's own, or the filter choices), else one query."""
        refs = {e.tenant_id for e in entries if e.tenant_id}
        tenants = {t.ref_id: t for t in known}
        if not refs <= tenants.keys():
            tenants = tenants_by_ref(refs)
        # One reverse() for the page: the detail URL is this prefix + id + "/".
        prefix = self.app_url("detail", "0").removesuffix("0/")
        return [
            Row(
                e,
                tenant_label(e, tenants),
                f"{prefix}{quote(str(e.pk), safe='')}/",
                icon=actor_icon(e.actor_type or ""),
                **{k: v for k, v in row_times(e.created_at).items() if k != "local"},
            )
            for e in entries
        ]

    def screen_context(self, scope: Scope) -> dict:
        return {
            "scope": scope,
            "app": scope.app,
            "list_url": self.app_url("list"),
            "viewer_tz": timezone.get_current_timezone_name(),
        }


class AuditListView(AuditScreenMixin, View):
    """The filterable list; with htmx, the results (filters changed) or more rows (cursor)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        scope = self.get_audit_scope()
        fragment = is_fragment_request(request)
        try:
            params = parse_params(request.GET)
            entries = audit_entries(scope=scope, params=params)
        except InvalidParams as exc:
            return bad_request(request, str(exc), fragment=fragment)

        # The list shows no before/after: leave the jsonb columns on the server.
        page = page_entries(entries.defer("before", "after"), cursor=params.cursor)
        choices = None
        if not fragment:
            choices = filter_choices(scope=scope)
        known = choices.tenants if choices else (scope.tenants or ())
        context = {
            **self.screen_context(scope),
            "params": params,
            "rows": self.rows(page.entries, known=known),
            "next_cursor": page.next_cursor,
            "more_url": (
                f"{self.app_url('list')}?{params.query_string(cursor=page.next_cursor)}"
                if page.next_cursor
                else ""
            ),
            "columns": 4 if scope.show_tenant else 3,
        }
        if fragment and params.cursor:
            template = "auditui/_rows.html"
        else:
            count, more = capped_count(entries, ordered=not params.q)
            context.update(
                count=count,
                count_more=more,
                count_label=f"{count:,}{'+' if more else ''}",
                export_csv=self.export_url(params, "csv"),
                export_ndjson=self.export_url(params, "ndjson"),
            )
            if fragment:
                template = "auditui/_results.html"
            else:
                template = "auditui/list.html"
                context.update(
                    choices=choices,
                    tenant_choices=[(t.slug, t.name) for t in choices.tenants],
                    range_choices=list(RANGE_LABELS.items()),
                    is_continued=params.cursor is not None,
                    first_page_url=f"{self.app_url('list')}?{params.query_string()}",
                    hidden_filters=[
                        (key, value)
                        for key, value in params.filters().items()
                        if key not in VISIBLE_CONTROLS | scope.controls
                    ],
                )
        response = render(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response

    def export_url(self, params: Params, fmt: str) -> str:
        return f"{self.app_url('export')}?{params.query_string(format=fmt)}"


class AuditDetailView(AuditScreenMixin, View):
    """One entry: the expanded row (htmx) or its own page."""

    def get(self, request: HttpRequest, entry_id: str) -> HttpResponse:
        scope = self.get_audit_scope()
        entry = get_entry(scope=scope, entry_id=entry_id)
        if entry is None:
            raise Http404("No such entry in this view.")
        tenants = tenants_by_ref({entry.tenant_id})
        try:
            trace = links.trace_links(entry.trace_id, at=entry.created_at)
        except (OverflowError, ValueError):  # an hour around year 1 or 9999
            trace = links.trace_links(entry.trace_id)
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
            "trace_entries_url": (
                f"{self.app_url('list')}?trace={entry.trace_id}&range=all" if trace else ""
            ),
            "detail_url": self.app_url("detail", str(entry.pk)),
        }
        template = "auditui/_detail.html" if is_fragment_request(request) else "auditui/detail.html"
        response = render(request, template, context)
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


class AuditExportView(AuditScreenMixin, View):
    """The current filtered view as CSV or NDJSON, streamed in keyset chunks."""

    def get(self, request: HttpRequest) -> HttpResponse:
        scope = self.get_audit_scope()
        fmt = request.GET.get("format", "")
        if fmt not in EXPORT_FORMATS:
            return bad_request(request, "'format' must be csv or ndjson.")
        try:
            params = parse_params(request.GET)
            entries = audit_entries(scope=scope, params=params)
        except InvalidParams as exc:
            return bad_request(request, str(exc))

        content_type, extension = EXPORT_FORMATS[fmt]
        if fmt == "csv" and connections[entries.db].vendor == "postgresql":
            # Chunks rendered at database speed (auditui.export). The header and
            # the first chunk are read before the export is recorded, below.
            chunks = export.csv_chunks(entries)
            head = [next(chunks), next(chunks, "")]
            self.record_export(scope, params, fmt)

            def counted() -> Iterator[str]:
                count = -1  # the header line
                try:
                    for chunk in itertools.chain(head, chunks):
                        count += chunk.count("\r\n")
                        yield chunk
                finally:
                    metrics.record_export(app=scope.app.name, format=fmt, rows=max(0, count))

            lines = counted()
        else:
            # Start reading before recording the export: the keyset walk runs
            # newest to oldest, so the export's own entry is never part of it.
            rows = iter_entries(entries)
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
        scope = self.get_audit_scope()
        fmt = request.GET.get("format", "")
        if fmt not in EXPORT_FORMATS:
            return bad_request(request, "'format' must be csv or ndjson.")
        try:
            audit_entries(scope=scope, params=parse_params(request.GET))
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
            if params.tenant:
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


class DashboardTenantView(LoginRequiredMixin, View):
    """Pick the active tenant of the Dashboard (kept in the session)."""

    def memberships(self) -> list[Membership]:
        return list(
            Membership.objects.filter(user=self.request.user)
            .select_related("tenant")
            .order_by("tenant__name")
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        memberships = self.memberships()
        if not memberships:
            raise Http404("You are not a member of any tenant.")
        active = request.session.get(DashboardScopeMixin.session_key)
        return render(
            request,
            "auditui/tenant_picker.html",
            {
                "memberships": memberships,
                "active_ref": active,
                "app": APPS["dashboard"],
                "list_url": reverse("dashboard:list"),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        slug = request.POST.get("tenant", "")
        membership = next((m for m in self.memberships() if m.tenant.slug == slug), None)
        if membership is None:
            return bad_request(request, "Pick one of your own tenants.")
        request.session[DashboardScopeMixin.session_key] = membership.tenant.ref_id
        return HttpResponseRedirect(reverse("dashboard:list"))


def _screen(mixin: type[AuditScopeMixin], view: type[View], suffix: str) -> type[View]:
    return type(f"{mixin.__name__.removesuffix('ScopeMixin')}{suffix}", (mixin, view), {})


DashboardAuditList = _screen(DashboardScopeMixin, AuditListView, "AuditList")
DashboardAuditDetail = _screen(DashboardScopeMixin, AuditDetailView, "AuditDetail")
DashboardAuditExport = _screen(DashboardScopeMixin, AuditExportView, "AuditExport")
PortalAuditList = _screen(PortalScopeMixin, AuditListView, "AuditList")
PortalAuditDetail = _screen(PortalScopeMixin, AuditDetailView, "AuditDetail")
PortalAuditExport = _screen(PortalScopeMixin, AuditExportView, "AuditExport")
ManageAuditList = _screen(ManageScopeMixin, AuditListView, "AuditList")
ManageAuditDetail = _screen(ManageScopeMixin, AuditDetailView, "AuditDetail")
ManageAuditExport = _screen(ManageScopeMixin, AuditExportView, "AuditExport")

SCREENS: dict[str, dict[str, type[View]]] = {
    "dashboard": {
        "list": DashboardAuditList,
        "detail": DashboardAuditDetail,
        "export": DashboardAuditExport,
    },
    "portal": {"list": PortalAuditList, "detail": PortalAuditDetail, "export": PortalAuditExport},
    "manage": {"list": ManageAuditList, "detail": ManageAuditDetail, "export": ManageAuditExport},
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
