"""The "Verify integrity" screens (issue 18), additive to the list screens.

* Manage (super admins): verifies every entry and digest.
* Dashboard (tenant admins): verifies the active tenant's entries only; the
  findings name that tenant's entries and the digests, nothing of other tenants.

Each screen also offers the files for an offline check: the digests (Manage:
full digests; Dashboard: the tenant's proofs) and the integrity export of the
entries (secret values masked as in the normal export, with the masked state's
hash in their place so the entry still checks; see docs/INTEGRITY.md).
The Portal has no integrity screen: reviewers see a slice of several tenants
(human and agent entries only), which no digest group describes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views import View

from auditui import diff
from auditui.scopes import DashboardScopeMixin, ManageScopeMixin
from dmobs.integrity.canonical import state_hash
from dmobs.integrity.keys import KeyProblem
from dmobs.integrity.service import digest_lines, entry_records, verify_store
from dmobs.integrity.verify import NOTICES
from dmobs.models import Membership

INTEGRITY_APPS = ("dashboard", "manage")


class IntegrityScreenMixin:
    """What the integrity screens add to a scope mixin: whose entries."""

    def integrity_denial(self) -> str | None:
        if self.get_audit_app().name == "dashboard":
            membership = self.get_active_membership()
            if membership.role != Membership.Role.ADMIN:
                return (
                    f"Only admins of {membership.tenant.name} can verify its audit log's integrity."
                )
        return None

    def integrity_tenant(self) -> str | None:
        """The tenantId verified: the Dashboard's active tenant, None (all) on Manage."""
        if self.get_audit_app().name == "dashboard":
            return self.get_active_membership().tenant.ref_id
        return None

    def denied(self, request: HttpRequest, reason: str) -> HttpResponse:
        return render(request, "403.html", {"exception": reason}, status=403)


def _bound(value: str, *, end: bool, tz) -> datetime | None:
    if not value:
        return None
    day = datetime.strptime(value, "%Y-%m-%d").date()  # ValueError on bad input
    moment = datetime.combine(day, time.max if end else time.min)
    return timezone.make_aware(moment, tz).astimezone(UTC)


class IntegrityView(IntegrityScreenMixin, View):
    template_name = "auditui/integrity.html"

    def context(self, **extra) -> dict:
        app = self.get_audit_app()
        scope = self.get_audit_scope()
        return {
            "app": app,
            "scope": scope,
            "list_url": reverse(f"{app.name}:list"),
            "action_url": reverse(f"{app.name}:integrity"),
            "digests_url": reverse(f"{app.name}:integrity_digests"),
            "entries_url": reverse(f"{app.name}:integrity_entries"),
            "keys_url": reverse("integrity_keys"),
            "tenant_only": self.integrity_tenant() is not None,
            "viewer_tz": timezone.get_current_timezone_name(),
            **extra,
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        reason = self.integrity_denial()
        if reason:
            return self.denied(request, reason)
        return render(request, self.template_name, self.context())

    def post(self, request: HttpRequest) -> HttpResponse:
        reason = self.integrity_denial()
        if reason:
            return self.denied(request, reason)
        tz = timezone.get_current_timezone()
        raw_from, raw_to = request.POST.get("from", ""), request.POST.get("to", "")
        try:
            date_from = _bound(raw_from, end=False, tz=tz)
            date_to = _bound(raw_to, end=True, tz=tz)
        except ValueError:
            return render(
                request,
                self.template_name,
                self.context(error="From and To must be dates like 2026-12-01."),
                status=400,
            )
        if date_from and date_to and date_from > date_to:
            return render(
                request,
                self.template_name,
                self.context(error="From is after To."),
                status=400,
            )
        try:
            report = verify_store(
                tenant=self.integrity_tenant(), date_from=date_from, date_to=date_to
            )
        except KeyProblem as exc:
            return render(
                request,
                self.template_name,
                self.context(error=f"The verification key is not configured: {exc}"),
                status=503,
            )
        groups = [
            {
                "kind": kind,
                "label": label,
                "count": count,
                "findings": findings,
                "notice": kind in NOTICES,
                "more": count - len(findings),
            }
            for kind, label, count, findings in report.by_kind()
        ]
        return render(
            request,
            self.template_name,
            self.context(report=report, groups=groups, date_from=raw_from, date_to=raw_to),
        )


def _download(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class IntegrityDigestsView(IntegrityScreenMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        reason = self.integrity_denial()
        if reason:
            return self.denied(request, reason)
        tenant = self.integrity_tenant()
        name = "audit-digests.ndjson" if tenant is None else "audit-tenant-proofs.ndjson"
        return _download(digest_lines(tenant=tenant), name)


def masked_record(record: dict) -> dict:
    """A record as the export shows it, with a masked state's hash in its place."""
    for name in ("before", "after"):
        value = record.get(name)
        shown = diff.mask_secrets(value)
        if shown != value:
            record[f"{name}Sha256"] = state_hash(value)
            record[name] = shown
    return record


class IntegrityEntriesView(IntegrityScreenMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        reason = self.integrity_denial()
        if reason:
            return self.denied(request, reason)
        tenant = self.integrity_tenant()

        def lines() -> Iterator[str]:
            for record in entry_records(tenant=tenant):
                yield json.dumps(masked_record(record), ensure_ascii=False) + "\n"

        return _download(lines(), "audit-entries-integrity.ndjson")


def _screen(mixin, view, name):
    return type(name, (mixin, view), {})


SCREENS = {
    "dashboard": {
        "integrity": _screen(DashboardScopeMixin, IntegrityView, "DashboardIntegrity"),
        "integrity_digests": _screen(
            DashboardScopeMixin, IntegrityDigestsView, "DashboardIntegrityDigests"
        ),
        "integrity_entries": _screen(
            DashboardScopeMixin, IntegrityEntriesView, "DashboardIntegrityEntries"
        ),
    },
    "manage": {
        "integrity": _screen(ManageScopeMixin, IntegrityView, "ManageIntegrity"),
        "integrity_digests": _screen(
            ManageScopeMixin, IntegrityDigestsView, "ManageIntegrityDigests"
        ),
        "integrity_entries": _screen(
            ManageScopeMixin, IntegrityEntriesView, "ManageIntegrityEntries"
        ),
    },
}


def urlpatterns_for(app: str, base: str) -> list:
    """The integrity URLs of an app's screen (none for the Portal)."""
    screens = SCREENS.get(app)
    if not screens:
        return []
    return [
        path(f"{base}/integrity", screens["integrity"].as_view(), name="integrity"),
        path(
            f"{base}/integrity/digests.ndjson",
            screens["integrity_digests"].as_view(),
            name="integrity_digests",
        ),
        path(
            f"{base}/integrity/entries.ndjson",
            screens["integrity_entries"].as_view(),
            name="integrity_entries",
        ),
    ]


def integrity_url(scope) -> str | None:
    """The "Verify integrity" link of a list screen, when its viewer may use it."""
    app = scope.app.name
    if app not in INTEGRITY_APPS:
        return None
    if app == "dashboard":
        active = scope.active_tenant
        membership = next((m for m in scope.memberships if m.tenant_id == active.pk), None)
        if membership is None or membership.role != Membership.Role.ADMIN:
            return None
    try:
        return reverse(f"{app}:integrity")
    except Exception:  # noqa: BLE001 - not served on this host
        return None
