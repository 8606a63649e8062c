"""A tenant admin to sign in with, for the sign-in backend and session tests."""

from __future__ import annotations

from dmobs.models import Membership, Tenant, User

PASSWORD = "pw-long-enough-1"
LIST = "/dashboard/settings/audit-log"


def tenant_admin(**extra) -> User:
    """Sarah, admin of Acme, who signs in with ``PASSWORD``."""
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    user = User.objects.create_user("sarah", password=PASSWORD, first_name="Sarah", **extra)
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return user
