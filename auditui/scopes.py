"""Who may open each audit-log screen, and which rows they see there.

Each mixin answers two questions, like Django's auth mixins: may this user enter
(``test_func()``, with a reason for the 403 page), and which rows may they see
(``get_audit_queryset()``). ``get_audit_scope()`` bundles the answer into a
``Scope`` that list, fragments, detail and export all start from.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from auditui.apps_registry import APPS, AuditApp
from auditui.filters import (
    ACTION,
    ACTOR,
    ACTOR_TYPE,
    PERIOD,
    RESOURCE_TYPE,
    SEARCH,
    TENANT,
    Filter,
    ref_condition,
)
from dmobs.fields import ref_values
from dmobs.models import AuditLog, Membership, Tenant

# The filters every screen offers as controls; a scope adds its own (tenant, ...).
# Every filter is accepted on every screen (each one only narrows the scope).
BASE_FILTERS: tuple[Filter, ...] = (SEARCH, ACTION, ACTOR, PERIOD)
DASHBOARD_TENANT_SESSION_KEY = "auditui.dashboard_tenant"


@dataclass(frozen=True)
class TenantPicker:
    """The Dashboard's switch between the tenants a user belongs to (list page header)."""

    memberships: tuple[Membership, ...]
    active: Tenant
    template: str = "auditui/_tenant_switch.jinja"

    @property
    def shown(self) -> bool:
        return len(self.memberships) > 1

    @property
    def action_url(self) -> str:
        """Where the switch posts (the Dashboard's tenant view)."""
        return reverse("dashboard:tenant")


@dataclass(frozen=True)
class Scope:
    """What one viewer may see in one app: the root queryset every read starts from."""

    app: AuditApp
    queryset: QuerySet
    # Tenants of the scope, for the tenant filter and column; None means all tenants.
    tenants: tuple[Tenant, ...] | None
    # Query keys of the filters the screen shows as controls (``auditui.filters``).
    controls: frozenset[str]
    show_tenant: bool = False
    # The one tenant the screen acts in (the Dashboard's), if any.
    active_tenant: Tenant | None = None
    # The Dashboard's tenant switch, if the scope has one.
    picker: TenantPicker | None = None
    # The screen's subtitle when it differs from the app's (a member's own actions).
    audience: str = ""

    @property
    def sees_platform(self) -> bool:
        """Platform-level entries (no tenant) are in this scope: ``tenant=platform``."""
        return self.tenants is None

    @property
    def several_tenants(self) -> bool:
        return self.tenants is None or len(self.tenants) > 1

    @property
    def memberships(self) -> tuple[Membership, ...]:
        return self.picker.memberships if self.picker else ()

    def offers(self, flt: Filter) -> bool:
        """Whether the screen shows ``flt``'s control."""
        return any(key in self.controls for key in flt.keys)


class AuditScopeMixin(UserPassesTestMixin):
    """Base of the three scope mixins.

    Subclasses set ``audit_app`` and implement ``get_denial_reason()`` and
    ``get_audit_queryset()``.
    """

    audit_app: str | None = None
    # The filters this screen shows as controls, in ``filters.FILTERS`` order.
    filters: tuple[Filter, ...] = BASE_FILTERS
    show_tenant_column = False

    @classmethod
    def extra_urlpatterns(cls, base: str) -> list:
        """URLs only this scope has (the Dashboard's tenant switch)."""
        return []

    def get_audit_app(self) -> AuditApp:
        name = self.audit_app
        if name is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} is missing the audit_app attribute. Define "
                f"{type(self).__name__}.audit_app or override "
                f"{type(self).__name__}.get_audit_app()."
            )
        if name not in APPS:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.audit_app is {name!r}; expected one of {', '.join(APPS)}."
            )
        return APPS[name]

    def get_denial_reason(self) -> str | None:
        """Why the signed-in user may not enter, or None when they may."""
        raise ImproperlyConfigured(
            f"{type(self).__name__} is missing get_denial_reason(). Use one of the scope "
            "mixins (Dashboard, Portal, Manage) or override "
            f"{type(self).__name__}.get_denial_reason()."
        )

    def get_audit_queryset(self) -> QuerySet:
        raise ImproperlyConfigured(
            f"{type(self).__name__} is missing get_audit_queryset(). Override "
            f"{type(self).__name__}.get_audit_queryset() to return the entries the user may see."
        )

    def get_scope_tenants(self) -> tuple[Tenant, ...] | None:
        return None

    def get_audit_scope(self) -> Scope:
        if not hasattr(self, "_audit_scope"):
            # A screen over several tenants acts in none of them: say so, so
            # logs and the server span do not look one up from memberships
            # (dmobs.observability.logger.request_identity). The Dashboard names its own.
            self.request.audit_tenant_ref = ""
            self._audit_scope = Scope(
                app=self.get_audit_app(),
                queryset=self.get_audit_queryset(),
                tenants=self.get_scope_tenants(),
                controls=frozenset(key for f in self.filters for key in f.keys),
                show_tenant=self.show_tenant_column,
                **self.get_scope_extra(),
            )
        return self._audit_scope

    def get_scope_extra(self) -> dict:
        """More ``Scope`` fields a subclass fills in."""
        return {}

    # UserPassesTestMixin
    def test_func(self) -> bool:
        if not self.request.user.is_authenticated:
            return False
        reason = self.get_denial_reason()
        if reason:
            self.permission_denied_message = reason
            return False
        return True

    def handle_no_permission(self):
        request = self.request
        if not request.user.is_authenticated and getattr(request, "htmx", False):
            # An htmx request would swap the sign-in page into the row: send
            # the whole page to sign in instead.
            login = redirect_to_login(request.get_full_path(), self.get_login_url())
            response = HttpResponse(status=204)
            response["HX-Redirect"] = login["Location"]
            return response
        return super().handle_no_permission()


class DashboardScopeMixin(AuditScopeMixin):
    """Tenant admins see their tenant; members only what they did, when allowed.

    A user in several tenants picks the active one; it is kept in the session.
    """

    audit_app = "dashboard"
    session_key = DASHBOARD_TENANT_SESSION_KEY

    @classmethod
    def extra_urlpatterns(cls, base: str) -> list:
        return [path(f"{base}/tenant", DashboardTenantView.as_view(), name="tenant")]

    def get_memberships(self) -> list[Membership]:
        if not hasattr(self, "_memberships"):
            # Read on every request (no copy kept): a membership removed or
            # demoted elsewhere counts on the next one.
            self._memberships = Membership.objects.of_user(self.request.user)
        return self._memberships

    def get_active_membership(self) -> Membership | None:
        memberships = self.get_memberships()
        if not memberships:
            return None
        chosen = self.request.session.get(self.session_key)
        for membership in memberships:
            if membership.tenant.ref_id == chosen:
                return membership
        # No (valid) choice yet: the first tenant the user administers, else the first.
        admin = [m for m in memberships if m.role == Membership.Role.ADMIN]
        return (admin or memberships)[0]

    def members_see_own_actions(self) -> bool:
        return bool(settings.DMOBS_MEMBERS_SEE_OWN_ACTIONS)

    def get_denial_reason(self) -> str | None:
        membership = self.get_active_membership()
        if membership is None:
            return (
                "The Dashboard audit log shows a tenant's own account, and you are not a "
                "member of any tenant."
            )
        if membership.role != Membership.Role.ADMIN and not self.members_see_own_actions():
            return (
                f"You are a member of {membership.tenant.name}, not an admin: only tenant "
                "admins can see its audit log."
            )
        return None

    def get_scope_tenants(self) -> tuple[Tenant, ...]:
        return (self.get_active_membership().tenant,)

    def get_audit_queryset(self) -> QuerySet:
        membership = self.get_active_membership()
        # ref_condition: on MongoDB an entry matches whether the Node services
        # stored the id as text or as an ObjectId.
        qs = AuditLog.objects.all()
        qs = qs.filter(ref_condition("tenant_id", membership.tenant.ref_id, alias=qs.db))
        if membership.role != Membership.Role.ADMIN:
            qs = qs.filter(ref_condition("actor_id", self.request.user.ref_id, alias=qs.db))
        return qs

    def get_audit_scope(self) -> Scope:
        scope = super().get_audit_scope()
        # The screen reads this tenant: logs and the server span name it
        # (dmobs.observability.logger.request_identity). Only the screens get here; the
        # landing page merely asks whether the user may enter.
        self.request.audit_tenant_ref = scope.active_tenant.ref_id
        return scope

    def get_scope_extra(self) -> dict:
        membership = self.get_active_membership()
        return {
            "active_tenant": membership.tenant,
            "picker": TenantPicker(tuple(self.get_memberships()), membership.tenant),
            # A member sees only what they did: the subtitle must not promise more.
            "audience": "" if membership.role == Membership.Role.ADMIN else "Your own actions",
        }


class PortalScopeMixin(AuditScopeMixin):
    """DM reviewers see human and agent entries of the tenants assigned to them."""

    audit_app = "portal"
    actor_types = ("human", "agent")
    filters = (*BASE_FILTERS, TENANT)
    show_tenant_column = True

    def get_scope_tenants(self) -> tuple[Tenant, ...]:
        if not hasattr(self, "_tenants"):
            self._tenants = tuple(
                Tenant.objects.filter(reviewer_assignments__reviewer=self.request.user).order_by(
                    "name"
                )
            )
        return self._tenants

    def get_denial_reason(self) -> str | None:
        if not self.get_scope_tenants():
            return (
                "The DM Portal audit log is for DM reviewers, and no tenant is assigned "
                "to you for review."
            )
        return None

    def get_audit_queryset(self) -> QuerySet:
        refs = [t.ref_id for t in self.get_scope_tenants()]
        alias = AuditLog.objects.all().db
        return AuditLog.objects.filter(
            tenant_id__in=ref_values(refs, alias=alias), actor_type__in=self.actor_types
        )


class ManageScopeMixin(AuditScopeMixin):
    """Super admins see every tenant and the platform-level entries (no tenant)."""

    audit_app = "manage"
    filters = (*BASE_FILTERS, TENANT, ACTOR_TYPE, RESOURCE_TYPE)
    show_tenant_column = True

    def get_denial_reason(self) -> str | None:
        if not self.request.user.is_superuser:
            return "The Manage audit log is for super admins only."
        return None

    def get_audit_queryset(self) -> QuerySet:
        return AuditLog.objects.all()


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
            response = render(
                request, "400.html", {"message": "Pick one of your own tenants."}, status=400
            )
            patch_vary_headers(response, ("HX-Request",))
            return response
        request.session[DashboardScopeMixin.session_key] = membership.tenant.ref_id
        return HttpResponseRedirect(reverse("dashboard:list"))
