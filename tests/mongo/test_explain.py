"""The query shapes of the list on MongoDB.

1. On every server: the keyset page compiles to a plain ``$match`` (no
   ``$expr``, which MongoDB cannot answer from an index) on the stored names,
   directly followed by a ``$sort`` on ``createdAt, _id`` descending and the
   ``$limit`` (see ``dmobs.audit.stores.mongo.IndexFriendlyCompilerMixin``).
2. On a real MongoDB only: ``explain()`` shows the page read through one of
   the list indexes of migration 0003, without an in-memory sort. The emulator's
   ``explain()`` describes its own in-memory plan, so there this part is skipped.
"""

from __future__ import annotations

import json

import pytest
from django.db import connections
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from dmobs.audit.stores.mongo import MongoStore
from dmobs.models import AuditLog
from tests.mongo.conftest import minutes_ago, writer_entry

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)

LIST_INDEXES = {
    "audit_created_idx",
    "audit_tenant_created_idx",
    "audit_tenant_actor_idx",
    "audit_tenant_action_idx",
    "audit_tenant_restype_idx",
}


def keyset_page(cursor=None, **filters):
    qs = AuditLog.objects.filter(**filters).order_by("-created_at", "-id")
    if cursor is not None:
        created_at, pk = cursor
        qs = qs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    return qs[:50]


def pipeline_of(qs) -> str:
    with CaptureQueriesContext(connections["audit"]) as captured:
        list(qs)
    return captured.captured_queries[-1]["sql"]


@pytest.fixture
def entries():
    rows = [writer_entry(i, created_at=minutes_ago(i)) for i in range(60)]
    MongoStore().write(rows)
    return rows


def test_keyset_page_compiles_to_an_indexable_match_and_sort(entries):
    last = entries[10]
    pipeline = pipeline_of(
        keyset_page((last["created_at"], last["id"]), tenant_id="tenant-acme", action="approved")
    )
    assert "'$match'" in pipeline
    assert "$expr" not in pipeline
    assert "'tenantId': 'tenant-acme'" in pipeline and "'action': 'approved'" in pipeline
    # $match, $sort, $limit and nothing between them: MongoDB can answer the
    # sort from an index only when the $sort directly follows the $match.
    assert "$addFields" not in pipeline and "$project" not in pipeline
    assert pipeline.endswith("{'$sort': SON([('createdAt', -1), ('_id', -1)])}, {'$limit': 50}])")


def _stages(plan):
    """Every stage name and index name in an explain document."""
    if isinstance(plan, dict):
        if "stage" in plan:
            yield plan["stage"], plan.get("indexName")
        for value in plan.values():
            yield from _stages(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _stages(value)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"tenant_id": "tenant-acme"},
        {"tenant_id": "tenant-acme", "actor_id": "user-sarah"},
        {"tenant_id": "tenant-acme", "action": "approved"},
        {"tenant_id__in": ["tenant-acme", "tenant-globex"], "actor_type__in": ["human", "agent"]},
    ],
    ids=["all", "tenant", "tenant+actor", "tenant+action", "portal"],
)
def test_keyset_page_uses_a_list_index_without_an_in_memory_sort(entries, filters):
    last = entries[10]
    explain = json.loads(keyset_page((last["created_at"], last["id"]), **filters).explain())
    if "engine_plan" in explain:
        pytest.skip("the emulator's explain() shows its own plan, not MongoDB's queryPlanner")
    stages = list(_stages(explain))
    index_names = {index for stage, index in stages if stage == "IXSCAN"}
    assert index_names & LIST_INDEXES, stages
    # An in-memory sort shows as a SORT stage (pushed down) or as a $sort
    # stage left in the pipeline (classic engine).
    assert "SORT" not in {stage for stage, _ in stages}, stages
    assert not any("$sort" in stage for stage in explain.get("stages", [])), explain
