"""The three audit-log screens on MongoDB, with entries written by this project
(the screens' test world, through the ORM) and by the Node services (pymongo,
exactly as they write them) in the same collection.

Users, tenants and sessions stay on the relational default database; only the
entries are on MongoDB.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from html import unescape

import pytest
from bson import ObjectId

from dmobs.models import AuditLog
from tests.auditui.conftest import build_world
from tests.auditui.helpers import LIST_URLS, row_ids, streamed
from tests.mongo.conftest import ms, node_document

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)

MORE_RE = re.compile(r'<a class="button" href="([^"]+)" hx-get=')


@pytest.fixture
def world(audit_collection):
    """The screens' world plus Node-written documents in acme, globex and the
    platform, some sharing a timestamp with an entry of ours, some missing the
    optional fields."""
    world = build_world()
    acme, globex = world.tenants["acme"].ref_id, world.tenants["globex"].ref_id
    newest = max(e.created_at for e in world.entries)
    specs = [
        (acme, "agent", {}),
        (acme, "human", {"omit": ("resourceName", "before", "after", "traceId")}),
        (acme, "system", {}),
        (globex, "agent", {"omit": ("before",)}),
        (globex, "system", {}),
        (None, "system", {"omit": ("resourceName", "traceId")}),
    ]
    docs = []
    for i, (tenant, actor_type, extra) in enumerate(specs):
        # Two of them share the time of one of ours: keyset ties across writers.
        created = world.entries[i * 40].created_at if i < 2 else newest - timedelta(minutes=i)
        docs.append(
            node_document(
                created_at=ms(created),
                tenant_id=tenant,
                actorType=actor_type,
                actorId=f"node-{actor_type}-{i}",
                actorName=f"Node {actor_type} {i}",
                description=f"Node {actor_type} {i} sent the deliverable",
                **extra,
            )
        )
    audit_collection.insert_many(docs)
    world.node_docs = docs
    return world


def node_ids(world, keep) -> set[str]:
    return {str(d["_id"]) for d in world.node_docs if keep(d)}


def walk(client, url) -> list[str]:
    """Every row id of a list, page by page through the "Load more" links."""
    ids = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        html = response.content.decode()
        ids += row_ids(response)
        more = MORE_RE.search(html)
        url = unescape(more.group(1)) if more else None
    return ids


def expected_order(qs) -> list[str]:
    """The ids in keyset order, as MongoDB returns them for the same scope."""
    return [pk for _, pk in sorted(qs.values_list("created_at", "pk"), reverse=True)]


SCOPES = {
    # app: (user, filter of the Node documents they must see)
    "dashboard": ("sarah", lambda w, d: d.get("tenantId") == w.tenants["acme"].ref_id),
    "portal": (
        "rita",
        lambda w, d: (
            d.get("tenantId") in {w.tenants["acme"].ref_id, w.tenants["globex"].ref_id}
            and d["actorType"] in ("human", "agent")
        ),
    ),
    "manage": ("root", lambda w, d: True),
}


@pytest.mark.parametrize("app", list(SCOPES))
def test_node_entries_appear_on_every_screen_with_its_scope(world, client, app):
    username, sees = SCOPES[app]
    client.force_login(world.users[username])

    shown = walk(client, f"{LIST_URLS[app]}?range=all")

    visible_node = node_ids(world, lambda d: sees(world, d))
    hidden_node = node_ids(world, lambda d: not sees(world, d))
    assert visible_node and visible_node <= set(shown)
    assert not hidden_node & set(shown)
    assert len(shown) == len(set(shown))  # each entry exactly once
    scoped = {
        "dashboard": AuditLog.objects.filter(tenant_id=world.tenants["acme"].ref_id),
        "portal": AuditLog.objects.filter(
            tenant_id__in=[world.tenants["acme"].ref_id, world.tenants["globex"].ref_id],
            actor_type__in=["human", "agent"],
        ),
        "manage": AuditLog.objects.all(),
    }[app]
    assert shown == expected_order(scoped)


def test_filters_and_count_include_node_entries(world, client):
    client.force_login(world.users["root"])
    html = client.get(f"{LIST_URLS['manage']}?range=all&actor_type=system").content.decode()
    ids = set(re.findall(r'id="entry-([0-9a-f]{24})"', html))
    assert node_ids(world, lambda d: d["actorType"] == "system") <= ids
    total = AuditLog.objects.filter(actor_type="system").count()
    assert f"<strong>{total}</strong>" in html
    # Filter choices come from the scoped rows, Node actors included.
    assert "Node agent 3" in client.get(f"{LIST_URLS['manage']}?range=all").content.decode()
    client.force_login(world.users["sarah"])
    assert "Node agent 3" not in client.get(LIST_URLS["dashboard"]).content.decode()


def test_exclusions_keep_node_documents_that_lack_the_field(world, client):
    """``-trace:X -tenant:platform`` on MongoDB: a Node document without a traceId
    is not "trace X" and stays; documents without a tenantId are platform's and go."""
    trace = "0af7651916cd43dd8448eb211c80319c"  # node_document's default
    client.force_login(world.users["root"])
    shown = walk(client, f"{LIST_URLS['manage']}?range=all&q=-trace:{trace}+-tenant:platform")
    kept = node_ids(world, lambda d: d.get("traceId") != trace and d.get("tenantId"))
    assert kept and kept <= set(shown)
    assert any("traceId" not in d for d in world.node_docs if str(d["_id"]) in kept)
    assert not node_ids(world, lambda d: d.get("traceId") == trace) & set(shown)
    expected = AuditLog.objects.exclude(trace_id=trace).exclude(tenant_id__isnull=True)
    assert shown == expected_order(expected)


def test_search_finds_node_entries(world, client):
    client.force_login(world.users["root"])
    ids = walk(client, f"{LIST_URLS['manage']}?range=all&q=NODE+system")
    assert set(ids) == node_ids(world, lambda d: d["actorType"] == "system")


def test_detail_of_a_node_entry_with_missing_fields(world, client):
    doc = world.node_docs[1]  # acme, human, no resourceName/before/after/traceId
    client.force_login(world.users["sarah"])
    url = f"{LIST_URLS['dashboard']}/{doc['_id']}/"
    page = client.get(url)
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    assert page.status_code == fragment.status_code == 200
    assert doc["description"] in page.content.decode()
    assert doc["description"] in fragment.content.decode()
    # Outside the scope, or not an id at all: 404, never a 500.
    client.force_login(world.users["rita"])
    system_doc = world.node_docs[2]  # acme, system: hidden from reviewers
    assert client.get(f"{LIST_URLS['portal']}/{system_doc['_id']}/").status_code == 404
    assert client.get(f"{LIST_URLS['portal']}/{ObjectId()}/").status_code == 404
    assert client.get(f"{LIST_URLS['portal']}/not-an-id/").status_code == 404


def test_export_includes_node_entries_and_is_audited(world, client, audit_collection):
    client.force_login(world.users["rita"])
    globex = world.tenants["globex"].ref_id
    response = client.get(f"{LIST_URLS['portal']}/export?format=csv&range=all&tenant=globex")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(streamed(response))))
    exported_ids = set(AuditLog.objects.filter(action="exported").values_list("pk", flat=True))
    expected = [
        pk
        for pk in expected_order(
            AuditLog.objects.filter(tenant_id=globex, actor_type__in=["human", "agent"])
        )
        if pk not in exported_ids
    ]
    assert [r["id"] for r in rows] == expected
    node = next(r for r in rows if r["id"] == str(world.node_docs[3]["_id"]))
    assert node["before"] == "" and json.loads(node["after"]) == {"status": "sent"}
    assert node["createdAt"].endswith("Z")
    # The export recorded itself in MongoDB, with an ObjectId _id.
    exported = audit_collection.find_one({"action": "exported"})
    assert isinstance(exported["_id"], ObjectId)
    assert exported["tenantId"] == globex

    client.force_login(world.users["root"])
    ndjson = client.get(f"{LIST_URLS['manage']}/export?format=ndjson&range=all&actor_type=system")
    records = [json.loads(line) for line in streamed(ndjson).splitlines() if line]
    assert node_ids(world, lambda d: d["actorType"] == "system") <= {r["id"] for r in records}


@pytest.mark.parametrize("app", list(SCOPES))
def test_list_request_query_shapes(world, client, app):
    """One list request: the page is ``$match, $sort, $limit`` (an index range
    scan on MongoDB), the count stops at 1,001 documents."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    client.force_login(world.users[SCOPES[app][0]])
    with CaptureQueriesContext(connections["audit"]) as captured:
        assert client.get(f"{LIST_URLS[app]}?action=sent&q=node").status_code == 200
    pipelines = [q["sql"] for q in captured.captured_queries]
    page = next(p for p in pipelines if "'$limit': 51}" in p)
    assert page.startswith("db.audit_logs.aggregate([{'$match': ")
    assert page.endswith("}, {'$sort': SON([('createdAt', -1), ('_id', -1)])}, {'$limit': 51}])")
    assert "$expr" not in page.split("'$sort'")[0]
    count = next(p for p in pipelines if "'$limit': 1001}" in p)
    assert "{'$project': {'_id': 1}}, {'$limit': 1001}" in count
