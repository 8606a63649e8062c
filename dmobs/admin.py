"""Admin: people and tenants are editable (and every change is audited);
audit entries are read-only."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.forms.models import model_to_dict

from dmobs.audit import audit_log
from dmobs.models import AuditDigest, AuditLog, Membership, ReviewerAssignment, Tenant, User
from dmobs.vocabulary import mask_secrets

SECRET_FIELDS = {"password"}


def _state(obj: Any) -> dict[str, Any]:
    """JSON-friendly snapshot of a model's concrete fields (secrets left out)."""
    data = model_to_dict(obj, fields=[f.name for f in obj._meta.concrete_fields])
    out = {}
    for key, value in data.items():
        if key in SECRET_FIELDS:
            continue
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif hasattr(value, "pk"):
            value = value.pk
        out[key] = value
    return out


def _changed(before: dict, after: dict) -> tuple[dict, dict]:
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


class AuditedAdminMixin:
    """Records create/update/delete made through the admin with ``audit_log()``."""

    audit_resource_type = ""

    def audit_tenant_ref(self, obj: Any) -> str | None:
        return None

    def audit_resource_name(self, obj: Any) -> str:
        return str(obj)

    def audit_resource_id(self, obj: Any) -> str:
        """The platform's id of what was acted on (``resourceId``): its ``ref_id``,
        the id the Node services and the screens know, never the database's
        integer key (which is also gone, as ``None``, once a row is deleted)."""
        return str(getattr(obj, "ref_id", None) or obj.pk)

    def _audit(
        self, request, obj, action: str, before=None, after=None, *, resource_id=None
    ) -> None:
        user = request.user
        audit_log(
            tenant_id=self.audit_tenant_ref(obj),
            actor_type="human",
            actor_id=user.ref_id,
            actor_name=user.get_full_name() or user.get_username(),
            action=action,
            resource_type=self.audit_resource_type,
            resource_id=resource_id or self.audit_resource_id(obj),
            resource_name=self.audit_resource_name(obj)[:300],
            description=(
                f"{user.get_username()} {action} {self.audit_resource_type.replace('_', ' ')} "
                f"{self.audit_resource_name(obj)}"
            )[:10_000],
            before=before,
            after=after,
        )

    def save_model(self, request, obj, form, change):
        before = _state(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        after = _state(obj)
        if change:
            before, after = _changed(before or {}, after)
            if before or after:
                self._audit(request, obj, "updated", before, after)
        else:
            self._audit(request, obj, "created", None, after)

    def delete_model(self, request, obj):
        # Taken before the row goes: after delete() the primary key is None.
        before = _state(obj)
        resource_id = self.audit_resource_id(obj)
        super().delete_model(request, obj)
        self._audit(request, obj, "deleted", before, None, resource_id=resource_id)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Tenant)
class TenantAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_resource_type = "tenant"
    list_display = ("name", "slug", "plan", "ref_id", "created_at")
    search_fields = ("name", "slug", "ref_id")
    readonly_fields = ("ref_id", "created_at")

    def audit_tenant_ref(self, obj):
        return obj.ref_id


@admin.register(User)
class UserAdmin(AuditedAdminMixin, BaseUserAdmin):
    audit_resource_type = "user"
    list_display = ("username", "email", "first_name", "last_name", "is_superuser", "ref_id")
    readonly_fields = ("ref_id",)
    fieldsets = (*BaseUserAdmin.fieldsets, ("Platform", {"fields": ("ref_id", "time_zone")}))


@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_resource_type = "user"
    list_display = ("user", "tenant", "role")
    list_filter = ("role",)

    def audit_tenant_ref(self, obj):
        return obj.tenant.ref_id

    def audit_resource_id(self, obj):
        return obj.user.ref_id  # a membership is about a user (resource type "user")


@admin.register(ReviewerAssignment)
class ReviewerAssignmentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_resource_type = "user"
    list_display = ("reviewer", "tenant")

    def audit_tenant_ref(self, obj):
        return obj.tenant.ref_id

    def audit_resource_id(self, obj):
        return obj.reviewer.ref_id


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Entries are permanent: the admin can look, never add, change or delete."""

    list_display = (
        "created_at",
        "tenant_id",
        "actor_type",
        "actor_name",
        "action",
        "resource_type",
        "description",
    )
    list_per_page = 50
    show_full_result_count = False
    actions = None
    # before/after are shown masked, like on every screen and export (dmobs.vocabulary).
    fields = tuple(
        f"masked_{f.name}" if f.name in ("before", "after") else f.name
        for f in AuditLog._meta.fields
    )

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @staticmethod
    def _masked(value: Any) -> str:
        if value is None:
            return "-"
        return json.dumps(mask_secrets(value), ensure_ascii=False)

    @admin.display(description="before")
    def masked_before(self, obj: AuditLog) -> str:
        return self._masked(obj.before)

    @admin.display(description="after")
    def masked_after(self, obj: AuditLog) -> str:
        return self._masked(obj.after)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditDigest)
class AuditDigestAdmin(admin.ModelAdmin):
    """Digests are permanent like entries (issue 18): look, never add, change or delete."""

    list_display = ("seq", "kind", "sealed_at", "after", "through", "count", "key_id")
    list_per_page = 50
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
