"""No stored value breaks a view on MongoDB either (issue 13, point 4): the
values of tests/auditui/test_stored_values.py within what MongoDB holds (a
document is at most 16 MB and 100 levels deep; strings are valid UTF-8), plus
what only BSON has: dates outside Python's years 1-9999."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import unescape

import pytest
from bson import DatetimeMS, ObjectId
from pymongo.errors import OperationFailure

from tests.auditui.conftest import build_world
from tests.auditui.helpers import LIST_URLS, row_ids, streamed
from tests.mongo.conftest import node_document

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


@pytest.fixture
def world(audit_collection):
    world = build_world()
    world.collection = audit_collection
    return world


def store(world, **fields) -> str:
    doc = node_document(tenant_id=world.tenants["acme"].ref_id, **fields)
    world.collection.insert_one(doc)
    return str(doc["_id"])


def nested(depth: int, leaf="bottom"):
    value = leaf
    for _ in range(depth):
        value = {"level": value}
    return value


def ndjson(client, app="manage"):
    response = client.get(f"{LIST_URLS[app]}/export?range=all&format=ndjson")
    assert response.status_code == 200
    return {r["id"]: r for r in (json.loads(x) for x in streamed(response).split("\n") if x)}


def test_deep_wide_and_big_states(world, client):
    deep = store(world, before=nested(90), after=nested(90, "changed"))
    wide_after = {f"key{i:06d}": i for i in range(100_000)}
    wide = store(world, before={"key000000": -1}, after=wide_after)
    big = store(world, before={"body": "a" * 15_000_000}, after={"body": "b"})
    control = store(world, after={"tab\there\x01": "bell\x07\x1b[31m", "nel\x85": "\u2028"})
    for app, user in (("dashboard", "sarah"), ("portal", "rita"), ("manage", "root")):
        client.force_login(world.users[user])
        listed = row_ids(client.get(f"{LIST_URLS[app]}?range=all"))
        assert {deep, wide, big, control} <= set(listed)
        for entry_id in (deep, wide, big, control):
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = client.get(f"{LIST_URLS[app]}/{entry_id}/", **headers)
                assert response.status_code == 200
                assert len(response.content) < 3_000_000
        html = unescape(client.get(f"{LIST_URLS[app]}/{wide}/").content.decode())
        assert "the first 1000 of 100000 changed fields" in html
        html = unescape(client.get(f"{LIST_URLS[app]}/{big}/").content.decode())
        assert "cut (15000002 characters in all)" in html
    records = ndjson(client)
    assert records[wide]["after"] == wide_after
    assert len(records[big]["before"]["body"]) == 15_000_000
    assert records[control]["after"] == {"tab\there\x01": "bell\x07\x1b[31m", "nel\x85": "\u2028"}


def test_dates_at_the_ends_of_the_calendar_in_any_time_zone(world, client):
    first = store(world, createdAt=datetime(1, 1, 1, tzinfo=UTC))
    last = store(world, createdAt=datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    user = world.users["root"]
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        user.time_zone = zone
        user.save(update_fields=["time_zone"])
        client.force_login(user)
        response = client.get(LIST_URLS["manage"])
        assert response.status_code == 200
        assert last in row_ids(response)
        for entry_id in (first, last):
            assert client.get(f"{LIST_URLS['manage']}/{entry_id}/").status_code == 200
    records = ndjson(client)
    assert records[first]["createdAt"] == "0001-01-01T00:00:00.000Z"
    assert records[last]["createdAt"] == "9999-12-31T23:59:59.999Z"


def test_dates_beyond_the_calendar(world, client):
    """BSON dates reach far beyond Python's years 1-9999; PyMongo reads them as
    DatetimeMS (settings: datetime_conversion), the screens as entries without
    a date."""
    try:
        beyond = store(world, createdAt=DatetimeMS(253402300800000))  # 10000-01-01
        inside = store(world, after={"when": DatetimeMS(-62135596800001)})  # before year 1
        world.collection.find_one({"_id": ObjectId(beyond)})
    except OperationFailure as exc:
        if "out of range" not in str(exc):
            raise
        pytest.skip("the emulator cannot hold a date outside years 1-9999 (a MongoDB server can)")
    client.force_login(world.users["root"])
    assert client.get(LIST_URLS["manage"]).status_code == 200
    records = ndjson(client)
    assert beyond not in records  # no place in time: left out, reachable by id
    html = unescape(client.get(f"{LIST_URLS['manage']}/{beyond}/").content.decode())
    assert "no date" in html and "DatetimeMS(253402300800000)" in html
    assert records[inside]["after"] == {"when": "DatetimeMS(-62135596800001)"}
