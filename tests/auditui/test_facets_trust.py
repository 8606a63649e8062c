"""Finding 2 of issue 12: the facet table only shapes the filter choices; it
never decides which entries a filter returns.

On PostgreSQL ``audit_facets`` is derived from audit_logs by a trigger. Whatever
happens to it (rows deleted by someone with the rights, the table emptied, junk
added), a filter's list, count and export are the entries that match, read from
audit_logs. On the other stores the facets are not read at all; the test runs
there too and must hold the same way.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pytest

from dmobs.models import AuditFacet, AuditLog
from tests.auditui.conftest import make_entry
from tests.auditui.helpers import LIST_URLS, ndjson_records, row_ids, streamed

pytestmark = pytest.mark.django_db

ROAMING = ("human", "u-roaming", "Roaming Consultant")


def _roaming_entries(world) -> list[str]:
    """Nine entries of one actor, spread over three tenants and the platform."""
    rng = random.Random(12)
    now = datetime.now(UTC)
    tenants = [world.tenants["acme"], world.tenants["globex"], world.tenants["initech"], None]
    entries = [
        make_entry(
            tenant=tenants[i % 4], actor=ROAMING, created_at=now - timedelta(hours=i), rng=rng
        )
        for i in range(9)
    ]
    AuditLog.objects.bulk_create(entries)
    return [e.pk for e in entries]


def _delete_facets(world, how: str) -> None:
    facets = AuditFacet.objects.all()
    if how == "actor-rows":
        facets = facets.filter(actor_id=ROAMING[1])
    elif how == "one-tenant":
        facets = facets.filter(actor_id=ROAMING[1], tenant_id=world.tenants["acme"].ref_id)
    facets.delete()
    if how == "junk":
        # Facets naming tenants where the actor never acted.
        AuditFacet.objects.bulk_create(
            AuditFacet(
                tenant_id=f"t-junk-{i}", actor_type="human", actor_id=ROAMING[1],
                actor_name="x", action="created", resource_type="skill",
            )
            for i in range(150)
        )  # fmt: skip


@pytest.mark.parametrize("how", ["one-tenant", "actor-rows", "all", "junk"])
def test_tampered_facets_change_no_filter_result(world, client, how):
    ids = _roaming_entries(world)
    _delete_facets(world, how)
    client.force_login(world.users["root"])
    url = f"{LIST_URLS['manage']}?actor={ROAMING[1]}&range=all"

    response = client.get(url)
    assert response.status_code == 200
    assert sorted(row_ids(response)) == sorted(ids)
    assert "<strong>9</strong> entries ·" in response.content.decode()

    for fmt in ("csv", "ndjson"):
        exported = client.get(f"{url}&format={fmt}".replace("/audit?", "/audit/export?"))
        assert exported.status_code == 200
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(streamed(exported))))
            got = [r["id"] for r in rows]
        else:
            got = [r["id"] for r in ndjson_records(exported)]
        assert sorted(got) == sorted(ids), fmt
