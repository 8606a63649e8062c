"""Entries this project writes from the Django admin carry the platform's ids
(``ref_id``) as ``resourceId``: on create, update and delete (issue 13, point 6)."""

from __future__ import annotations

import pytest

from dmobs.models import AuditLog, Membership, Tenant, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client):
    User.objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    client.force_login(User.objects.get(username="root"))
    return client


def entries(resource_type: str, action: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(resource_type=resource_type, action=action))


def test_tenant_create_update_delete_carry_the_ref_id(root_client):
    response = root_client.post(
        "/admin/dmobs/tenant/add/", {"name": "Umbrella", "slug": "umbrella", "plan": "pro"}
    )
    assert response.status_code == 302, response.content[:500]
    tenant = Tenant.objects.get(slug="umbrella")
    ref = tenant.ref_id
    assert str(tenant.pk) != ref

    (created,) = entries("tenant", "created")
    assert created.resource_id == ref and created.tenant_id == ref

    response = root_client.post(
        f"/admin/dmobs/tenant/{tenant.pk}/change/",
        {"name": "Umbrella Corp", "slug": "umbrella", "plan": "pro"},
    )
    assert response.status_code == 302
    (updated,) = entries("tenant", "updated")
    assert updated.resource_id == ref
    assert updated.before == {"name": "Umbrella"} and updated.after == {"name": "Umbrella Corp"}

    response = root_client.post(f"/admin/dmobs/tenant/{tenant.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    (deleted,) = entries("tenant", "deleted")
    assert deleted.resource_id == ref  # taken before the row went ("None" before the fix)
    assert deleted.before["ref_id"] == ref


def test_bulk_delete_of_users_carries_each_ref_id(root_client):
    users = [User.objects.create_user(f"temp{i}", password="pw-long-enough-1") for i in range(3)]
    response = root_client.post(
        "/admin/dmobs/user/",
        {"action": "delete_selected", "_selected_action": [u.pk for u in users], "post": "yes"},
    )
    assert response.status_code == 302
    deleted = entries("user", "deleted")
    assert sorted(e.resource_id for e in deleted) == sorted(u.ref_id for u in users)
    assert all(e.resource_id != "None" for e in deleted)


def test_membership_entries_name_the_member(root_client):
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    user = User.objects.create_user("mia", password="pw-long-enough-1")
    response = root_client.post(
        "/admin/dmobs/membership/add/", {"user": user.pk, "tenant": tenant.pk, "role": "member"}
    )
    assert response.status_code == 302, response.content[:500]
    membership = Membership.objects.get(user=user)
    root_client.post(f"/admin/dmobs/membership/{membership.pk}/delete/", {"post": "yes"})
    created, deleted = entries("user", "created"), entries("user", "deleted")
    assert [e.resource_id for e in created] == [user.ref_id]
    assert [e.resource_id for e in deleted] == [user.ref_id]
    assert {e.tenant_id for e in created + deleted} == {tenant.ref_id}
