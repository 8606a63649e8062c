"""Sign-in, sign-out and failed sign-in produce audit entries."""

from __future__ import annotations

import pytest

from dmobs.models import AuditLog, Membership, Tenant, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def sarah():
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    user = User.objects.create_user("sarah", password="pw-long-enough-1", first_name="Sarah")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return user


def test_sign_in_and_out_are_audited(client, sarah):
    response = client.post(
        "/accounts/login/", {"username": "sarah", "password": "pw-long-enough-1"}
    )
    assert response.status_code == 302
    client.post("/accounts/logout/")
    entries = list(AuditLog.objects.filter(resource_type="session").order_by("created_at", "id"))
    assert [e.action for e in entries] == ["logged_in", "logged_out"]
    assert all(e.actor_id == sarah.ref_id for e in entries)
    assert all(e.tenant_id == sarah.memberships.get().tenant.ref_id for e in entries)


def test_failed_sign_in_is_audited_without_the_password(client, sarah):
    response = client.post("/accounts/login/", {"username": "sarah", "password": "wrong-guess"})
    assert response.status_code == 200
    entry = AuditLog.objects.get(action="failed")
    assert entry.resource_type == "session"
    assert "sarah" in entry.description
    assert "wrong-guess" not in str(entry.after) + entry.description
