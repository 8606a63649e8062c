"""Entries carrying XSS payloads are rendered inert on every server-rendered path.

The payloads (tests/auditui/hostile.py) sit in every text field and in the keys
and values of before/after. Each page or fragment is tokenized like a browser
would: no element, event handler or script URL came from the data, the
payload shows as text, and broken markup in the data closed none of the page's
own tables or rows.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils.http import urlencode

from auditui.query import encode_cursor
from tests.auditui.helpers import LIST_URLS, ndjson_records, row_ids, streamed
from tests.auditui.hostile import (
    ATTR,
    BROKEN,
    IMG,
    JS_URL,
    LONG,
    RESOURCE_URLS,
    RTL,
    SCRIPT,
    SVG,
    ZERO_WIDTH,
    assert_inert,
    insert_hostile,
)

pytestmark = pytest.mark.django_db

# (app, user, names of the hostile entries they see)
VIEWERS = {
    "dashboard": ("sarah", {"script", "broken", "long", "rtl", "trace", "attr", "link"}),
    "portal": ("rita", {"script", "broken", "long", "rtl", "trace", "attr", "link"}),
    "manage": ("root", {"script", "broken", "long", "rtl", "tenant", "trace", "attr", "link"}),
}


@pytest.fixture
def hostile(world, settings):
    settings.DMOBS_RESOURCE_URLS = RESOURCE_URLS
    settings.DMOBS_GRAFANA_URL = "https://grafana.example.test"
    return insert_hostile(world.tenants["acme"], now=world.now + timedelta(minutes=5))


def seen(names: set[str], hostile) -> list:
    return [e for e in hostile.entries if e.resource_name in names]


@pytest.mark.parametrize("app", VIEWERS)
def test_list_and_fragments_escape_entry_data(world, hostile, client, app):
    user, names = VIEWERS[app]
    client.force_login(world.users[user])
    expected = {e.pk for e in seen(names, hostile)}
    url = f"{LIST_URLS[app]}?range=all"

    page = assert_inert(client.get(url).content.decode())
    text = page.all_text()
    # The payloads are there, as text.
    for payload in (SCRIPT, IMG, SVG, BROKEN):
        assert payload in text
    assert RTL in text and ZERO_WIDTH in text
    # A row shows at most 300 characters of the description (the detail has it all).
    assert LONG[:299] + "…" in text and LONG not in text
    # ...and the filter choices (actor ids in <option value>) did not break out either.
    assert any(attrs.get("value") == ATTR for tag, attrs in page.starts if tag == "option")

    results = client.get(url, HTTP_HX_REQUEST="true")
    assert expected <= set(row_ids(results))
    assert_inert(results.content.decode(), fragment=True)

    # "Load more" rows: a cursor just after the hostile entries.
    newest = max(e.created_at for e in hostile.entries)
    cursor = encode_cursor(newest + timedelta(seconds=1), "z")
    rows = client.get(f"{url}&cursor={cursor}", HTTP_HX_REQUEST="true")
    assert expected <= set(row_ids(rows))
    html = rows.content.decode()
    assert html.lstrip().startswith('<tr class="entry"')
    assert_inert(html, fragment=True)
    # One row and one detail row per entry: broken markup added none.
    assert html.count('<tr class="entry"') == len(row_ids(rows))


@pytest.mark.parametrize("app", VIEWERS)
def test_detail_page_and_fragment_escape_entry_data(world, hostile, client, app):
    user, names = VIEWERS[app]
    client.force_login(world.users[user])
    for entry in seen(names, hostile):
        url = f"{LIST_URLS[app]}/{entry.pk}/"
        for headers, fragment in (({}, False), ({"HTTP_HX_REQUEST": "true"}, True)):
            response = client.get(url, **headers)
            assert response.status_code == 200, (entry.resource_name, response.status_code)
            page = assert_inert(response.content.decode(), fragment=fragment)
            text = page.all_text()
            assert entry.description in text
            if entry.resource_name == "script":
                # Keys and values of before/after are text, in the diff's cells.
                for payload in (SCRIPT, IMG, SVG):
                    assert payload in text
                assert json.dumps(BROKEN) in text
            if entry.resource_name == "trace":
                assert "Open trace" not in text  # not a trace id: no links
                assert "javascript:alert(1)" in text  # shown as text


def test_hostile_entries_are_hidden_from_other_scopes(world, hostile, client):
    """The tenant-less hostile entry (bad tenantId) is Manage's only."""
    tenant_entry = next(e for e in hostile.entries if e.resource_name == "tenant")
    client.force_login(world.users["sarah"])
    assert client.get(f"{LIST_URLS['dashboard']}/{tenant_entry.pk}/").status_code == 404
    client.force_login(world.users["root"])
    html = client.get(f"{LIST_URLS['manage']}/{tenant_entry.pk}/").content.decode()
    text = assert_inert(html).all_text()
    assert tenant_entry.tenant_id in text


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_carries_payloads_as_data_with_download_headers(world, hostile, client, fmt):
    client.force_login(world.users["root"])
    response = client.get(f"{LIST_URLS['manage']}/export?format={fmt}&range=all")
    assert response.status_code == 200
    content_type = {"csv": "text/csv", "ndjson": "application/x-ndjson"}[fmt]
    assert response["Content-Type"] == f"{content_type}; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-log-manage-')
    assert disposition.endswith(f'.{fmt}"')
    assert response["Cache-Control"] == "private, no-store"
    if fmt == "ndjson":
        records = {r["resourceName"]: r for r in ndjson_records(response)}
        assert records["broken"]["description"] == BROKEN
        assert records["script"]["actorName"] == SCRIPT
        assert records["script"]["before"]["nested"][SVG] == [BROKEN, JS_URL]
    else:
        rows = {r["resourceName"]: r for r in csv.DictReader(io.StringIO(streamed(response)))}
        assert rows["broken"]["description"] == BROKEN
        assert rows["script"]["actorName"] == SCRIPT
        assert json.loads(rows["script"]["before"])["nested"][SVG] == [BROKEN, JS_URL]


@pytest.mark.parametrize("app", VIEWERS)
def test_history_and_live_tail_escape_entry_data(world, hostile, client, app, settings):
    """A resource's history (page and later steps) and the live tail's rows."""
    # The hostile entries are stamped 5 minutes ahead: let the tail reach them.
    settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS = -600
    user, names = VIEWERS[app]
    client.force_login(world.users[user])
    for entry in seen(names, hostile):
        if entry.resource_name == "long":
            continue  # 100,000 characters: the detail tests cover its escaping
        query = urlencode({"resource_type": entry.resource_type, "resource_id": entry.resource_id})
        for headers, fragment in (({}, False), ({"HTTP_HX_REQUEST": "true"}, True)):
            response = client.get(f"{LIST_URLS[app]}/history?{query}", **headers)
            if response.status_code == 400:
                # A hostile resource type is not a name: refused, and the message is inert.
                assert_inert(response.content.decode(), fragment=fragment)
                continue
            assert response.status_code == 200, (entry.resource_name, response.status_code)
            text = assert_inert(response.content.decode(), fragment=fragment).all_text()
            assert entry.description in text
    oldest = min(e.created_at for e in hostile.entries)
    since = encode_cursor(oldest - timedelta(seconds=1), "0" * 24)
    rows = client.get(f"{LIST_URLS[app]}?range=all&since={since}", HTTP_HX_REQUEST="true")
    assert {e.pk for e in seen(names, hostile)} <= set(row_ids(rows))
    assert_inert(rows.content.decode(), fragment=True)
