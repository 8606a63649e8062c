"""Permanence on every path: an audit entry, once written, is never changed or
removed — not by the ORM (instance, queryset, bulk, async twins), not through
the admin (change, delete, actions, add), and on PostgreSQL not by SQL (a
trigger rejects UPDATE, DELETE and TRUNCATE, upserts and MERGE included).

Every test ends by reading the entry back from the database unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from dmobs.ids import new_object_id
from dmobs.models import AuditLog, PermanentEntryError, Tenant, User

pytestmark = pytest.mark.django_db

ORIGINAL = "Ann created a skill"
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the SQL trigger exists on PostgreSQL only"
)


def make_entry(**overrides) -> AuditLog:
    fields = dict(
        id=new_object_id(),
        tenant_id="t-perm",
        actor_type="human",
        actor_id="u-1",
        actor_name="Ann",
        action="created",
        resource_type="skill",
        resource_id="sk-1",
        description=ORIGINAL,
        before={"status": "draft"},
        created_at=datetime.now(UTC),
    )
    fields.update(overrides)
    entry = AuditLog(**fields)
    entry.save()
    return entry


def assert_unchanged(entry: AuditLog) -> None:
    stored = AuditLog.objects.get(pk=entry.pk)
    assert stored.description == ORIGINAL
    assert stored.action == "created"
    assert stored.before == {"status": "draft"}


def run_async(make_coroutine):
    async def main():
        return await make_coroutine()

    return async_to_sync(main)()


def _run_async_on(obj, make_coroutine):
    # Load on the sync side; only the call under test runs in the event loop.
    return run_async(lambda: make_coroutine(obj))


def _loaded(entry):
    obj = AuditLog.objects.get(pk=entry.pk)
    obj.description = "tampered"
    return obj


ORM_ATTEMPTS = {
    "instance-save": lambda e: _loaded(e).save(),
    "instance-save-update-fields": lambda e: _loaded(e).save(update_fields=["description"]),
    "instance-save-force-update": lambda e: _loaded(e).save(force_update=True),
    "instance-delete": lambda e: e.delete(),
    "instance-adelete": lambda e: run_async(e.adelete),
    "queryset-update": lambda e: AuditLog.objects.filter(pk=e.pk).update(description="x"),
    "queryset-update-all": lambda e: AuditLog.objects.update(description="x"),
    "queryset-delete": lambda e: AuditLog.objects.filter(pk=e.pk).delete(),
    "queryset-delete-all": lambda e: AuditLog.objects.all().delete(),
    "queryset-raw-delete": lambda e: AuditLog.objects.filter(pk=e.pk)._raw_delete("default"),
    "select-for-update-then-update": lambda e: (
        AuditLog.objects.select_for_update().filter(pk=e.pk).update(action="x")
    ),
    "queryset-aupdate": lambda e: run_async(
        lambda: AuditLog.objects.filter(pk=e.pk).aupdate(description="x")
    ),
    "queryset-adelete": lambda e: run_async(AuditLog.objects.filter(pk=e.pk).adelete),
    "bulk-update": lambda e: AuditLog.objects.bulk_update([_loaded(e)], ["description"]),
    "abulk-update": lambda e: _run_async_on(
        _loaded(e), lambda obj: AuditLog.objects.abulk_update([obj], ["description"])
    ),
    "update-or-create": lambda e: AuditLog.objects.update_or_create(
        pk=e.pk, defaults={"description": "x"}
    ),
    "aupdate-or-create": lambda e: run_async(
        lambda: AuditLog.objects.aupdate_or_create(pk=e.pk, defaults={"description": "x"})
    ),
    "bulk-create-update-conflicts": lambda e: AuditLog.objects.bulk_create(
        [_loaded(e)], update_conflicts=True, unique_fields=["id"], update_fields=["description"]
    ),
    "abulk-create-update-conflicts": lambda e: _run_async_on(
        _loaded(e),
        lambda obj: AuditLog.objects.abulk_create(
            [obj], update_conflicts=True, unique_fields=["id"], update_fields=["description"]
        ),
    ),
}


@pytest.mark.parametrize("attempt", ORM_ATTEMPTS.values(), ids=ORM_ATTEMPTS.keys())
def test_orm_refuses(attempt):
    entry = make_entry()
    with pytest.raises(PermanentEntryError, match="permanent"):
        attempt(entry)
    assert_unchanged(entry)


def test_a_new_instance_with_an_existing_id_cannot_overwrite():
    entry = make_entry()
    impostor = AuditLog(
        id=entry.pk,
        tenant_id="t-perm",
        actor_type="human",
        actor_id="u-2",
        actor_name="Mallory",
        action="deleted",
        resource_type="skill",
        resource_id="sk-1",
        description="tampered",
        created_at=datetime.now(UTC),
    )
    # save() always inserts: a second row with the same id is a key violation,
    # never an UPDATE (force_update is ignored for entries).
    with pytest.raises(IntegrityError), transaction.atomic():
        impostor.save(force_update=True)
    assert_unchanged(entry)


def test_bulk_create_ignoring_conflicts_keeps_the_first_version():
    entry = make_entry()
    AuditLog.objects.bulk_create([_loaded(entry)], ignore_conflicts=True)
    assert_unchanged(entry)


def test_deleting_the_actor_or_tenant_leaves_their_entries():
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    user = User.objects.create_user("ann", password="pw-long-enough-1")
    entry = make_entry(actor_id=user.ref_id, tenant_id=tenant.ref_id)
    user.delete()
    tenant.delete()  # audit_logs has no foreign keys: nothing cascades into it
    stored = AuditLog.objects.get(pk=entry.pk)
    assert (stored.actor_id, stored.tenant_id) == (user.ref_id, tenant.ref_id)
    assert_unchanged(entry)


# --- the admin ----------------------------------------------------------------


@pytest.fixture
def root_client(client):
    User.objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    response = client.post("/accounts/login/", {"username": "root", "password": "pw-long-enough-1"})
    assert response.status_code == 302
    return client


def test_admin_change_view_is_read_only(root_client):
    entry = make_entry()
    url = f"/admin/dmobs/auditlog/{entry.pk}/change/"
    page = root_client.get(url)
    assert page.status_code == 200  # a super admin may look
    assert b'name="description"' not in page.content  # ...but gets no form fields
    assert b'name="_save"' not in page.content  # and no save button
    response = root_client.post(url, {"description": "tampered", "action": "updated"})
    assert response.status_code == 403
    assert_unchanged(entry)


@pytest.mark.parametrize("method", ["get", "post"])
def test_admin_delete_view_is_refused(root_client, method):
    entry = make_entry()
    response = getattr(root_client, method)(
        f"/admin/dmobs/auditlog/{entry.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert_unchanged(entry)


def test_admin_delete_selected_action_is_refused(root_client):
    entry = make_entry()
    changelist = root_client.get("/admin/dmobs/auditlog/")
    assert changelist.status_code == 200
    assert b"delete_selected" not in changelist.content  # no actions offered
    response = root_client.post(
        "/admin/dmobs/auditlog/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code in (200, 400, 403)
    assert_unchanged(entry)


def test_admin_add_view_is_refused(root_client):
    response = root_client.post("/admin/dmobs/auditlog/add/", {"description": "forged"})
    assert response.status_code == 403
    assert not AuditLog.objects.filter(description="forged").exists()


# --- SQL on PostgreSQL -------------------------------------------------------------

SQL_ATTEMPTS = {
    "update": "UPDATE audit_logs SET description = 'tampered' WHERE id = %(id)s",
    "update-all": "UPDATE audit_logs SET description = 'tampered'",
    "delete": "DELETE FROM audit_logs WHERE id = %(id)s",
    "delete-all": "DELETE FROM audit_logs",
    "truncate": "TRUNCATE audit_logs",
    "truncate-cascade": "TRUNCATE audit_logs CASCADE",
    "upsert": (
        'INSERT INTO audit_logs (id, "actorType", "actorId", "actorName", action, '
        '"resourceType", "resourceId", description, "createdAt") '
        "VALUES (%(id)s, 'human', 'x', 'x', 'x', 'x', 'x', 'tampered', now()) "
        "ON CONFLICT (id) DO UPDATE SET description = EXCLUDED.description"
    ),
    "merge": (
        "MERGE INTO audit_logs t USING (SELECT %(id)s AS id) s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET description = 'tampered'"
    ),
    "merge-delete": (
        "MERGE INTO audit_logs t USING (SELECT %(id)s AS id) s ON t.id = s.id "
        "WHEN MATCHED THEN DELETE"
    ),
}


def _enable_truncate_trigger(cursor) -> None:
    # The suite disables the TRUNCATE trigger so test cleanup can run
    # (tests/conftest.py); turn it back on inside this test's transaction.
    cursor.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_no_truncate")


@pytest.mark.postgres
@on_postgres
@pytest.mark.parametrize("sql", SQL_ATTEMPTS.values(), ids=SQL_ATTEMPTS.keys())
def test_sql_is_rejected_by_the_trigger(sql):
    entry = make_entry()
    with connection.cursor() as cursor:
        _enable_truncate_trigger(cursor)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(sql, {"id": entry.pk})
    assert_unchanged(entry)


@pytest.mark.postgres
@on_postgres
def test_a_role_granted_only_select_and_insert_cannot_change_or_unprotect():
    """The role production should give the app: SELECT and INSERT on audit_logs,
    not the table's owner. Beside the trigger, privileges refuse UPDATE/DELETE,
    and only the owner could disable the trigger. (Roles are transactional in
    PostgreSQL: this one disappears with the test's rollback.)"""
    entry = make_entry()
    role = "dmobs_trust_app_test"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(f"GRANT SELECT, INSERT ON audit_logs TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        for sql, error in [
            ("UPDATE audit_logs SET description = 'tampered'", "permission denied"),
            ("DELETE FROM audit_logs", "permission denied"),
            ("TRUNCATE audit_logs", "permission denied"),
            ("ALTER TABLE audit_logs DISABLE TRIGGER USER", "must be owner"),
        ]:
            with pytest.raises(DatabaseError, match=error), transaction.atomic():
                cursor.execute(sql)
        cursor.execute(
            'INSERT INTO audit_logs (id, "actorType", "actorId", "actorName", action, '
            '"resourceType", "resourceId", description, "createdAt") '
            "VALUES (%s, 'system', 's', 'S', 'created', 'skill', 'x', 'new', now())",
            [new_object_id()],
        )
        cursor.execute("RESET ROLE")
    assert_unchanged(entry)
    assert AuditLog.objects.filter(description="new").count() == 1
    # The facets trigger (SECURITY DEFINER) still records the new actor for the
    # screens' filter choices, though the role has no rights on audit_facets.
    with connection.cursor() as cursor:
        cursor.execute("""SELECT count(*) FROM audit_facets WHERE "actorId" = 's'""")
        assert cursor.fetchone() == (1,)
