"""The AuditLog model stores and reads back an entry with the stored names.

Every path that would change or remove an entry is tried in test_permanence.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from dmobs.ids import new_object_id
from dmobs.models import AuditLog

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


def test_insert_then_read_back_under_the_stored_names():
    entry = make_entry(before={"plan": "free"}, after={"plan": "pro"})
    loaded = AuditLog.objects.get(pk=entry.pk)
    assert (loaded.description, loaded.after) == ("Ann created a skill", {"plan": "pro"})
    # The columns carry the names the platform's Node services write.
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "tenantId", "actorType", "actorId", "resourceType", "createdAt" '
            "FROM audit_logs WHERE id = %s",
            [entry.pk],
        )
        tenant, actor_type, actor, resource_type, created = cursor.fetchone()
    assert (tenant, actor_type, actor, resource_type) == ("t-1", "human", "u-1", "skill")
    assert created is not None
