"""Keyset paging on MongoDB over entries written by audit_log()'s writer and by
the Node services, side by side: ``(createdAt, _id) < cursor``, newest first,
every entry exactly once and in order, ties on the time broken by the id."""

from __future__ import annotations

import random

import pytest
from bson import ObjectId
from django.db.models import Q

from dmobs.audit.stores.mongo import MongoStore
from dmobs.models import AuditLog
from tests.mongo.conftest import minutes_ago, node_document, writer_entry

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


def page_after(cursor, size, **filters):
    qs = AuditLog.objects.filter(**filters).order_by("-created_at", "-id")
    if cursor is not None:
        created_at, pk = cursor
        qs = qs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    return list(qs[:size])


def walk(size, **filters):
    seen, cursor = [], None
    while True:
        page = page_after(cursor, size, **filters)
        seen.extend(page)
        if len(page) < size:
            return seen
        cursor = (page[-1].created_at, page[-1].id)


@pytest.fixture
def mixed_entries(audit_collection):
    """120 entries, half from each writer, over 40 distinct times (so many ties)."""
    rng = random.Random(7)
    times = [minutes_ago(m) for m in range(40)]
    ours = [writer_entry(i, created_at=rng.choice(times)) for i in range(60)]
    MongoStore().write(ours)
    theirs = [
        node_document(
            created_at=rng.choice(times),
            tenant_id=rng.choice(["tenant-acme", None]),
            omit=rng.choice([(), ("resourceName", "before", "after")]),
        )
        for _ in range(60)
    ]
    audit_collection.insert_many(theirs)
    expected = [(e["created_at"], e["id"]) for e in ours] + [
        (d["createdAt"], str(d["_id"])) for d in theirs
    ]
    expected.sort(reverse=True)
    return expected, theirs


@pytest.mark.parametrize("size", [7, 50, 200])
def test_keyset_walk_returns_every_entry_once_in_order(mixed_entries, size):
    expected, _ = mixed_entries
    seen = walk(size)
    assert [(e.created_at, e.id) for e in seen] == expected
    assert len({e.id for e in seen}) == len(expected)


def test_keyset_walk_within_a_tenant(mixed_entries):
    expected, theirs = mixed_entries
    platform = {str(d["_id"]) for d in theirs if "tenantId" not in d}
    in_tenant = [pair for pair in expected if pair[1] not in platform]
    assert [(e.created_at, e.id) for e in walk(9, tenant_id="tenant-acme")] == in_tenant


def test_hex_order_is_objectid_order():
    ids = sorted(ObjectId() for _ in range(50))
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]
