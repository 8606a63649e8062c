"""Documents written by the platform's own client: the official Node.js driver
(``tests/mongo/node_writer.js``, the ``mongodb`` package pinned in package.json)
in every shape the platform produces, and malformed ones, through the three
screens (list, filters, detail, diff) and both exports, for the right viewers only.

The driver writes; the tests read back with PyMongo (the emulator answers the
Node driver's inserts but not its ``find``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connections

from dmobs.models import Membership
from dmobs.observability import metrics
from tests.auditui.conftest import build_world
from tests.auditui.helpers import LIST_URLS, row_ids, streamed
from tests.obs_helpers import captured_json_logs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)
MORE_RE = re.compile(r'<a class="button" href="([^"]+)" hx-get=')
# A diff row: path, then the rest of the row's text (kind, before, after).
DIFF_ROW_RE = re.compile(
    r'<tr class="diff-\w+"><th scope="row"><code>(.*?)</code></th>(.*?)</tr>', re.S
)


def write_with_node(world) -> dict[str, str]:
    node = shutil.which("node")
    assert node, "Node.js is required for the Node-driver tests (it is needed for htmx too)"
    db = connections["audit"].settings_dict["NAME"]
    spec = {
        "uri": settings.DATABASES["audit"]["HOST"],
        "db": db,
        "tenants": {slug: t.ref_id for slug, t in world.tenants.items()},
        "people": {name: u.ref_id for name, u in world.users.items()},
        "now": int(time.time() * 1000),
    }
    result = subprocess.run(
        [node, str(ROOT / "tests/mongo/node_writer.js")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def node_world(audit_collection):
    world = build_world()
    world.node_ids = write_with_node(world)
    return world


# --- who sees what --------------------------------------------------------------

PLACEABLE = {
    "bson_states",
    "objectid_tenant",
    "objectid_tenant_globex",
    "objectid_tenant_initech",
    "missing_optional",
    "camel_action",
    "mixed_action",
    "extra_fields",
    "platform_missing",
    "platform_null",
    "bad_missing_required",
    "bad_wrong_types",
}
NO_DATE = {"bad_created_string", "bad_created_number"}
TENANT_OF = {  # label -> tenant slug (None: platform)
    "objectid_tenant_globex": "globex",
    "objectid_tenant_initech": "initech",
    "platform_missing": None,
    "platform_null": None,
}
ACTOR_TYPE_OF = {  # documents whose actorType is not the base "agent"
    "objectid_tenant": "human",
    "objectid_tenant_globex": "human",
    "platform_missing": "system",
    "platform_null": "system",
    "bad_missing_required": None,
    "bad_wrong_types": 5,
}
VIEWERS = {"dashboard": "sarah", "portal": "rita", "manage": "root"}


def sees(app: str, label: str) -> bool:
    """Independent oracle: may the viewer of ``app`` see the Node document ``label``?"""
    tenant = TENANT_OF.get(label, "acme")
    actor_type = ACTOR_TYPE_OF.get(label, "agent")
    if app == "dashboard":
        return tenant == "acme"
    if app == "portal":
        return tenant in ("acme", "globex") and actor_type in ("human", "agent")
    return True


def walk(client, url) -> list[str]:
    ids = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        ids += row_ids(response)
        more = MORE_RE.search(response.content.decode())
        url = unescape(more.group(1)) if more else None
    return ids


@pytest.mark.parametrize("app", VIEWERS)
def test_each_shape_in_the_list_and_both_exports_for_the_right_viewers(node_world, client, app):
    client.force_login(node_world.users[VIEWERS[app]])
    ids = node_world.node_ids
    expected = {ids[label] for label in PLACEABLE if sees(app, label)}
    hidden = {ids[label] for label in PLACEABLE | NO_DATE if not sees(app, label)}
    before = skipped()

    with captured_json_logs() as lines:
        listed = walk(client, f"{LIST_URLS[app]}?range=all")
    assert expected <= set(listed)
    assert not hidden & set(listed)
    assert not {ids[label] for label in NO_DATE} & set(listed)
    assert len(listed) == len(set(listed))
    # The default list (last 30 days) has them on its first page: they are minutes old.
    assert expected <= set(row_ids(client.get(LIST_URLS[app])))
    # Entries without a date: left out, counted, logged by id (visible ones only).
    left_out = {ids[label] for label in NO_DATE if sees(app, label)}
    logged = {line.get("entryId") for line in lines if line["event"] == "audit entry left out"}
    assert logged == left_out
    assert skipped() - before == len(left_out)

    for fmt in ("csv", "ndjson"):
        response = client.get(f"{LIST_URLS[app]}/export?range=all&format={fmt}")
        assert response.status_code == 200
        body = streamed(response)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(body)))
        else:
            rows = [json.loads(line) for line in body.split("\n") if line]
        # The export is the list, whole (plus the export entries recorded meanwhile).
        exported = [row["id"] for row in rows if row["action"] != "exported"]
        assert set(exported) == set(listed), fmt
        assert body.endswith("\n")


def skipped() -> float:
    return metrics.AUDIT_MALFORMED_SKIPPED._value.get()


# --- as a person expects --------------------------------------------------------


def test_bson_values_in_the_diff(node_world, client):
    client.force_login(node_world.users["sarah"])
    url = f"{LIST_URLS['dashboard']}/{node_world.node_ids['bson_states']}/"
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.get(url, **headers)
        assert response.status_code == 200
        html = unescape(response.content.decode())
        rows = dict(DIFF_ROW_RE.findall(html))
        assert "badge-changed" in rows["budget"]
        assert "1234.50" in rows["budget"] and "0.10" in rows["budget"]  # exact decimals
        assert "9007199254740993" in rows["views"] and "9007199254740995" in rows["views"]
        assert '"2026-01-31T12:30:45.123Z"' in rows["publishedAt"]  # ISO-8601 UTC
        assert '"2026-02-01T00:00:00.000Z"' in rows["publishedAt"]
        assert '"base64:AAEC+v8="' in rows["checksum"]
        # null became an object: one changed row, the new ObjectId as its hex.
        assert "badge-changed" in rows["reviewer"] and ">null<" in rows["reviewer"]
        assert '"id": "65f000000000000000000def"' in rows["reviewer"]
        assert '"65f000000000000000000abc"' in rows["_id"]
        assert '"65f000000000000000000abc"' in rows["tags[1][0].deep[2].deeper"]
        assert "sk-live" not in html  # the secret rule holds for Node states
        assert "ObjectId(" not in html and "Decimal128" not in html and "Int64" not in html
        assert "not stored the way the platform writes entries" not in html


def test_bson_values_in_both_exports(node_world, client):
    client.force_login(node_world.users["root"])
    entry_id = node_world.node_ids["bson_states"]
    ndjson = client.get(f"{LIST_URLS['manage']}/export?range=all&format=ndjson")
    records = {r["id"]: r for r in (json.loads(x) for x in streamed(ndjson).split("\n") if x)}
    record = records[entry_id]
    before, after = record["before"], record["after"]
    assert before["_id"] == "65f000000000000000000abc"
    assert before["publishedAt"] == "2026-01-31T12:30:45.123Z"
    assert before["views"] == 9007199254740993  # an exact integer, not a float
    assert before["count"] == 7 and before["ratio"] == 0.25 and before["reviewer"] is None
    assert before["checksum"] == "base64:AAEC+v8="
    assert before["apiKey"] != "sk-live-must-not-show"
    assert after["reviewer"] == {"id": "65f000000000000000000def", "name": "Rita"}
    assert after["tags"] == [["a"], []]
    line = next(x for x in streamed_lines(client, "ndjson") if entry_id in x)
    assert '"budget":1234.50' in line and '"budget":0.10' in line  # every stored digit
    # The ObjectId tenant and actor export as their hex, like the relational ids.
    oid = records[node_world.node_ids["objectid_tenant"]]
    assert oid["tenantId"] == node_world.tenants["acme"].ref_id
    assert oid["actorId"] == node_world.users["sarah"].ref_id
    missing = records[node_world.node_ids["missing_optional"]]
    assert missing["actorName"] is None and missing["resourceName"] is None
    assert missing["traceId"] is None and missing["before"] is None

    csv_body = streamed(client.get(f"{LIST_URLS['manage']}/export?range=all&format=csv"))
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(csv_body))}
    row = rows[entry_id]
    assert json.loads(row["before"])["publishedAt"] == "2026-01-31T12:30:45.123Z"
    assert '"budget":1234.50' in row["before"] and "sk-live" not in csv_body
    assert rows[node_world.node_ids["objectid_tenant"]]["tenantId"] == (
        node_world.tenants["acme"].ref_id
    )


def streamed_lines(client, fmt):
    response = client.get(f"{LIST_URLS['manage']}/export?range=all&format={fmt}")
    return streamed(response).split("\n")


def test_objectid_tenant_and_actor_match_their_tenant_and_person(node_world, client):
    ids = node_world.node_ids
    client.force_login(node_world.users["root"])
    acme = walk(client, f"{LIST_URLS['manage']}?range=all&tenant=acme")
    assert ids["objectid_tenant"] in acme and ids["objectid_tenant_globex"] not in acme
    sarah = node_world.users["sarah"].ref_id
    by_actor = walk(client, f"{LIST_URLS['manage']}?range=all&actor={sarah}")
    assert ids["objectid_tenant"] in by_actor
    html = unescape(client.get(f"{LIST_URLS['manage']}?range=all").content.decode())
    # The Tenant column names the tenant of an ObjectId tenantId.
    row = re.search(rf'id="entry-{ids["objectid_tenant_globex"]}".*?</tr>', html, re.S).group()
    assert ">Globex<" in row


@pytest.mark.parametrize("app", VIEWERS)
def test_every_dropdown_value_is_accepted_and_finds_its_entries(node_world, client, app):
    client.force_login(node_world.users[VIEWERS[app]])
    html = client.get(f"{LIST_URLS[app]}?range=all").content.decode()
    checked = 0
    for name in ("action", "actor", "resource_type", "actor_type", "tenant"):
        select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
        if not select:
            continue
        for value in re.findall(r'<option value="([^"]*)"', select.group(1)):
            if not value:
                continue
            value = unescape(value)
            response = client.get(f"{LIST_URLS[app]}?{urlencode({'range': 'all', name: value})}")
            assert response.status_code == 200, (name, value, response.content[:300])
            assert row_ids(response), (name, value)  # offered, so something matches
            checked += 1
    assert checked
    # camelCase and mixed-case actions are offered, and choosing one finds its entry.
    actions = re.search(r'<select[^>]*name="action"[^>]*>(.*?)</select>', html, re.S).group(1)
    assert 'value="autoActivated"' in actions and 'value="Auto_Activated"' in actions
    found = walk(client, f"{LIST_URLS[app]}?range=all&action=autoActivated")
    assert found == [node_world.node_ids["camel_action"]]


def test_extra_fields_are_ignored_and_missing_ones_shown_as_missing(node_world, client):
    client.force_login(node_world.users["sarah"])
    ids = node_world.node_ids
    html = unescape(client.get(f"{LIST_URLS['dashboard']}/{ids['extra_fields']}/").content.decode())
    assert "Node extra fields" in html and "__v" not in html and "203.0.113.9" not in html
    html = unescape(
        client.get(f"{LIST_URLS['dashboard']}/{ids['missing_optional']}/").content.decode()
    )
    assert "(unknown actor)" in html and "None" not in html
    assert "actorName is missing" in html  # a required field, named on the page
    listed = unescape(client.get(f"{LIST_URLS['dashboard']}?range=all").content.decode())
    row = re.search(rf'id="entry-{ids["missing_optional"]}".*?</tr>', listed, re.S).group()
    assert "agent-node-writer" in row  # no name: the actor id stands in


# --- malformed ------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(NO_DATE | {"bad_missing_required", "bad_wrong_types"}))
def test_malformed_entries_are_reachable_by_id_on_manage(node_world, client, label):
    client.force_login(node_world.users["root"])
    url = f"{LIST_URLS['manage']}/{node_world.node_ids[label]}/"
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.get(url, **headers)
        assert response.status_code == 200
        html = unescape(response.content.decode())
        assert "not stored the way the platform writes entries" in html
    if label in NO_DATE:
        assert "no date" in html and "createdAt is stored as" in html
    if label == "bad_wrong_types":
        assert "actorType is stored as a number" in html
        assert "Node description as an object" in html  # shown as stored
        assert "resourceId is stored as a number" in html
    if label == "bad_missing_required":
        assert "actorType is missing" in html and "action is missing" in html


def test_a_member_sees_own_actions_stored_with_their_objectid(node_world, client, settings):
    settings.DMOBS_MEMBERS_SEE_OWN_ACTIONS = True
    sarah = node_world.users["sarah"]
    Membership.objects.filter(user=sarah).update(role="member")
    client.force_login(sarah)
    listed = set(walk(client, f"{LIST_URLS['dashboard']}?range=all"))
    node = set(node_world.node_ids.values())
    assert listed & node == {node_world.node_ids["objectid_tenant"]}
    own = {e.pk for e in node_world.of_tenant("acme") if e.actor_id == sarah.ref_id}
    assert own and own <= listed


def test_date_and_text_filters_with_every_shape(node_world, client):
    ids = node_world.node_ids
    client.force_login(node_world.users["root"])
    today = datetime.now(UTC).date()
    days = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    listed = set(walk(client, f"{LIST_URLS['manage']}?{days}"))
    assert {ids[label] for label in PLACEABLE} <= listed
    assert not {ids[label] for label in NO_DATE} & listed  # a time range holds dates only
    for range_ in ("24h", "7d", "30d", "90d"):
        assert {ids[label] for label in PLACEABLE} <= set(
            walk(client, f"{LIST_URLS['manage']}?range={range_}")
        )
    # Free text finds text fields; a description stored as an object is not text.
    found = set(walk(client, f"{LIST_URLS['manage']}?range=all&q=node+objectid"))
    assert found == {
        ids["objectid_tenant"],
        ids["objectid_tenant_globex"],
        ids["objectid_tenant_initech"],
    }
    assert walk(client, f"{LIST_URLS['manage']}?range=all&q=description+as+an+object") == []
