"""Permanence: no ORM path and (on PostgreSQL) no SQL path changes an entry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from dmobs.ids import new_object_id
from dmobs.models import AuditLog, PermanentEntryError

pytestmark = pytest.mark.django_db


def make_entry(**overrides) -> AuditLog:
    fields = dict(
        id=new_object_id(),
        tenant_id="t-1",
        actor_type="human",
        actor_id="u-1",
        actor_name="Ann",
        action="created",
        resource_type="skill",
        resource_id="sk-1",
        description="Ann created a skill",
        created_at=datetime.now(UTC),
    )
    fields.update(overrides)
    entry = AuditLog(**fields)
    entry.save()
    return entry


def test_insert_then_read_back():
    entry = make_entry()
    assert AuditLog.objects.get(pk=entry.pk).description == "Ann created a skill"


@pytest.mark.parametrize(
    "attempt",
    [
        lambda e: e.save(),
        lambda e: AuditLog.objects.get(pk=e.pk).save(),
        lambda e: e.delete(),
        lambda e: AuditLog.objects.filter(pk=e.pk).update(description="x"),
        lambda e: AuditLog.objects.filter(pk=e.pk).delete(),
        lambda e: AuditLog.objects.all().delete(),
        lambda e: AuditLog.objects.bulk_update([e], ["description"]),
        lambda e: AuditLog.objects.update_or_create(pk=e.pk, defaults={"action": "x"}),
        lambda e: AuditLog.objects.bulk_create(
            [AuditLog(id=e.pk, description="x")],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["description"],
        ),
    ],
    ids=[
        "save-same-instance",
        "save-loaded-instance",
        "delete-instance",
        "queryset-update",
        "queryset-delete",
        "delete-all",
        "bulk-update",
        "update-or-create",
        "bulk-create-upsert",
    ],
)
def test_orm_paths_refuse(attempt):
    entry = make_entry()
    with pytest.raises(PermanentEntryError, match="permanent"):
        attempt(entry)
    assert AuditLog.objects.get(pk=entry.pk).description == "Ann created a skill"


def test_duplicate_insert_is_ignored_by_bulk_create():
    entry = make_entry()
    AuditLog.objects.bulk_create(
        [AuditLog(id=entry.pk, **{k: getattr(entry, k) for k in ("actor_type", "created_at")})],
        ignore_conflicts=True,
    )
    assert AuditLog.objects.filter(pk=entry.pk).count() == 1
    assert AuditLog.objects.get(pk=entry.pk).description == "Ann created a skill"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="triggers are PostgreSQL only")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_logs SET description = 'tampered' WHERE id = %s",
        "DELETE FROM audit_logs WHERE id = %s",
        "TRUNCATE audit_logs",
    ],
    ids=["update", "delete", "truncate"],
)
def test_raw_sql_is_rejected_on_postgresql(sql):
    entry = make_entry()
    with connection.cursor() as cursor:
        # The suite disables the TRUNCATE trigger so test cleanup can run;
        # turn it back on inside this test's transaction.
        cursor.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_no_truncate")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(sql, [entry.pk] if "%s" in sql else None)
    assert AuditLog.objects.get(pk=entry.pk).description == "Ann created a skill"
