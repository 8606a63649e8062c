"""The peer: the Django admin changelist on audit_logs, set up the way a Django
developer would (list_display, list_filter, date_hierarchy, search, 50 per
page). It lives on its own AdminSite so the product's admin stays read-only
and unchanged; only the benchmark mounts it."""

from __future__ import annotations

from django.contrib import admin

from dmobs.models import AuditLog


class PeerAdminSite(admin.AdminSite):
    site_header = "Benchmark peer (Django admin)"


class PeerAuditLogAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "tenant_id",
        "actor_type",
        "actor_name",
        "action",
        "resource_type",
        "description",
    )
    list_filter = ("action", "actor_type", "resource_type")
    date_hierarchy = "created_at"
    search_fields = ("description",)
    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and obj is None

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


peer_site = PeerAdminSite(name="peer_admin")
peer_site.register(AuditLog, PeerAuditLogAdmin)
