"""Views: fragments vs pages, export, escaping."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from auditui.views import csv_cell
from dmobs.models import AuditLog
from tests.auditui.conftest import bulk_platform_entries, make_entry
from tests.auditui.helpers import LIST_URLS, ndjson_records, row_ids, streamed

pytestmark = pytest.mark.django_db


def test_detail_is_fragment_for_htmx_and_page_otherwise(world, client):
    client.force_login(world.users["root"])
    entry = world.entries[0]
    url = f"{LIST_URLS['manage']}/{entry.pk}/"
    page = client.get(url)
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    restore = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in page.content.decode()
    assert "<html" not in fragment.content.decode()
    assert "<html" in restore.content.decode()
    for response in (page, fragment, restore):
        assert "HX-Request" in response["Vary"]
        assert entry.description in response.content.decode()
        assert "Changes" in response.content.decode()


def test_list_fragments(world, client):
    client.force_login(world.users["root"])
    url = f"{LIST_URLS['manage']}?range=all"
    results = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "replaced by htmx when the filters change" in results
    assert "<strong>" in results  # the count
    cursor_url = results.split('class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    rows = client.get(cursor_url, HTTP_HX_REQUEST="true").content.decode()
    assert rows.lstrip().startswith('<tr class="entry"')
    plain = client.get(cursor_url).content.decode()
    assert "<html" in plain and "Back to the newest" in plain


def test_rows_show_tenant_platform_time_and_actor_icon(world, client):
    client.force_login(world.users["root"])
    html = client.get(f"{LIST_URLS['manage']}?range=all").content.decode()
    # Tenant cells are click-to-filter links; platform entries filter on tenant=platform.
    assert re.search(r'<a class="filter-link platform" href="[^"]*tenant=platform[^"]*"', html)
    assert re.search(r'<td class="col-tenant"><a class="filter-link" href="[^"]*tenant=acme', html)
    assert 'aria-label="Agent"' in html and 'aria-label="System"' in html
    assert 'aria-expanded="false"' in html and 'aria-controls="detail-row-' in html
    assert ' UTC" ' not in html or 'title="' in html
    # sarah is in Europe/Berlin: offsets are shown, UTC is in the tooltip.
    client.force_login(world.users["sarah"])
    html = client.get(f"{LIST_URLS['dashboard']}?range=all").content.decode()
    assert "UTC+01:00" in html or "UTC+02:00" in html
    assert 'class="col-tenant"' not in html


def test_entry_data_is_escaped(world, client):
    client.force_login(world.users["root"])
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    entry = make_entry(
        tenant=None,
        actor=("human", "x", payload),
        created_at=datetime.now(UTC),
        rng=random.Random(1),
        description=payload,
        before={payload: payload},
        after={payload: "<b>bold</b>"},
    )
    AuditLog.objects.bulk_create([entry])
    for url in (LIST_URLS["manage"], f"{LIST_URLS['manage']}/{entry.pk}/"):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html


def test_export_csv_matches_the_screen_and_is_audited(world, client):
    client.force_login(world.users["rita"])
    params = "tenant=globex&range=all&actor_type=human"
    expected = set(
        AuditLog.objects.filter(
            tenant_id=world.tenants["globex"].ref_id, actor_type="human"
        ).values_list("pk", flat=True)
    )
    response = client.get(f"{LIST_URLS['portal']}/export?format=csv&{params}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(streamed(response))))
    assert {r["id"] for r in rows} == expected
    assert len(rows) == len(expected)
    assert list(rows[0]) == [
        "id",
        "tenantId",
        "actorType",
        "actorId",
        "actorName",
        "action",
        "resourceType",
        "resourceId",
        "resourceName",
        "description",
        "before",
        "after",
        "traceId",
        "createdAt",
    ]
    assert rows[0]["createdAt"].endswith("Z") and "T" in rows[0]["createdAt"]
    exported = AuditLog.objects.filter(action="exported")
    assert exported.count() == 1
    record = exported.get()
    assert record.resource_type == "audit_log"
    assert record.actor_id == world.users["rita"].ref_id
    assert record.tenant_id == world.tenants["globex"].ref_id
    assert record.after["filters"] == {"tenant": "globex", "range": "all", "actor_type": "human"}
    assert record.after["format"] == "csv"
    # The screen shows the same number (plus the export's own entry, now).
    html = client.get(f"{LIST_URLS['portal']}?{params}").content.decode()
    assert f"<strong>{len(expected) + 1}</strong>" in html


def test_export_ndjson_over_several_chunks(world, client):
    client.force_login(world.users["root"])
    bulk_platform_entries(2100, seed=9)
    expected = AuditLog.objects.count()
    labels = {"app": "manage", "format": "ndjson"}
    exports_before = REGISTRY.get_sample_value("dmobs_audit_exports_total", labels) or 0
    rows_before = REGISTRY.get_sample_value("dmobs_audit_export_rows_total", labels) or 0
    records = ndjson_records(client.get(f"{LIST_URLS['manage']}/export?format=ndjson&range=all"))
    assert len(records) == expected == len({r["id"] for r in records})
    # The export shows up on the "Audit activity" dashboard's export panels.
    assert REGISTRY.get_sample_value("dmobs_audit_exports_total", labels) == exports_before + 1
    assert REGISTRY.get_sample_value("dmobs_audit_export_rows_total", labels) == (
        rows_before + expected
    )
    assert [r["createdAt"] for r in records] == sorted(
        (r["createdAt"] for r in records), reverse=True
    )


def test_the_generic_export_gives_way_before_each_chunk_after_the_first(world, client, monkeypatch):
    """NDJSON (and CSV off PostgreSQL) reads in keyset chunks; before each one
    after the first it waits while the server's other requests are in flight,
    like the PostgreSQL CSV export (tests/auditui/test_export_chunks.py)."""
    from auditui import views

    client.force_login(world.users["root"])
    bulk_platform_entries(2100, seed=11)
    expected = AuditLog.objects.count()
    waits = []
    monkeypatch.setattr(views.foreground, "wait_for_quiet", lambda limit: waits.append(limit))
    records = ndjson_records(client.get(f"{LIST_URLS['manage']}/export?format=ndjson&range=all"))
    assert len(records) == expected
    assert waits == [views.export.GIVE_WAY_SECONDS] * ((expected - 1) // 1000)


@pytest.mark.parametrize(
    "value,cell",
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (None, ""),
        ({"k": "=1"}, '{"k":"=1"}'),
    ],
)
def test_csv_cell_neutralises_formulas(value, cell):
    assert csv_cell(value) == cell


# Formula injection in every column of the export: tests/auditui/test_csv_injection.py.


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_export_masks_secrets_and_shows_token_counts(world, client, fmt):
    """Both formats, and on PostgreSQL both CSV paths' quick text check: a
    credential is masked, an agent's token usage (a number) is shown."""
    client.force_login(world.users["root"])
    entry = make_entry(
        tenant=None,
        actor=("human", "x", "Secret Sam"),
        created_at=datetime.now(UTC),
        rng=random.Random(4),
        before={"api_key": "sk-live-123", "usage": {"inputTokens": 20164}},
        after={"api_key": "sk-live-456", "usage": {"outputTokens": 3676}, "accessTokens": "tk-9"},
    )
    AuditLog.objects.bulk_create([entry])
    body = streamed(client.get(f"{LIST_URLS['manage']}/export?format={fmt}&q=Secret Sam"))
    assert "sk-live" not in body and "tk-9" not in body
    assert "20164" in body and "3676" in body


def test_trace_filter_link_from_detail(world, client):
    client.force_login(world.users["root"])
    entry = world.entries[5]
    html = client.get(f"{LIST_URLS['manage']}/{entry.pk}/").content.decode()
    link = f"/manage/audit?trace={entry.trace_id}&amp;range=all"
    assert link in html
    assert row_ids(client.get(link.replace("&amp;", "&"))) == [entry.pk]


def test_markup_needs_no_unsafe_inline(world, client):
    """No inline scripts, event handlers or style attributes (a strict CSP holds)."""
    client.force_login(world.users["root"])
    entry = world.entries[0]
    pages = [
        "/",
        f"{LIST_URLS['manage']}?range=all",
        f"{LIST_URLS['manage']}/{entry.pk}/",
        f"{LIST_URLS['manage']}/history?resource_type={entry.resource_type}"
        f"&resource_id={entry.resource_id}",
        "/accounts/login/",
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+\s*=", html), url
        assert not re.search(r"\sstyle\s*=", html), url
        assert "hx-on" not in html and "javascript:" not in html, url
        assert '"allowEval":false' in html.replace("&quot;", '"')


def test_option_templates_escape_values_label_and_mark_the_selected_one():
    from auditui.templatetags.audit_tags import render_fragment

    html = render_fragment(
        "auditui/_actor_options.jinja",
        {
            "options": [
                ("a&1", "<Sam> · Acme", "acme", False),
                ("bot", "Planner (agent)", "x", True),
            ],
            "selected": "bot",
        },
    )
    assert html.strip() == (
        '<option value="a&amp;1" data-tenants="acme">&lt;Sam&gt; · Acme</option>'
        '<option value="bot" data-tenants="x" hidden selected>Planner (agent)</option>'
    )
    html = render_fragment(
        "auditui/_options.jinja",
        {"choices": [("x", "x"), ("7d", "Last 7 days"), ('"><b>', "<b>")], "selected": "7d"},
    )
    assert html.strip() == (
        '<option value="x">x</option><option value="7d" selected>Last 7 days</option>'
        '<option value="&#34;&gt;&lt;b&gt;">&lt;b&gt;</option>'
    )


def actor_options(html: str) -> dict[str, str]:
    """The actor control's options: value -> the whole <option> tag and label."""
    select = html.split('<select id="f-actor"', 1)[1].split("</select>", 1)[0]
    return dict(re.findall(r'<option value="([^"]+)"([^>]*>[^<]*)</option>', select))


def test_actor_options_follow_tenant_names_filters_and_selection_at_once(world, client):
    """The actor options' markup is kept per process for identical inputs
    (views.actor_options_markup): a renamed tenant, another tenant filter or
    another selected actor must each show on the very next request."""
    client.force_login(world.users["root"])
    url = LIST_URLS["manage"]
    first = actor_options(client.get(url).content.decode())
    assert first and all("Acme Renamed" not in option for option in first.values())
    assert client.get(url).content.decode().count("<option") > len(first)  # served again
    acme = world.tenants["acme"]
    acme.name = "Acme Renamed"
    acme.save()
    renamed = actor_options(client.get(url).content.decode())
    assert renamed.keys() == first.keys()
    assert any("Acme Renamed" in option for option in renamed.values())

    filtered = actor_options(client.get(url, {"tenant": "globex"}).content.decode())
    globex_only = {a for a, option in filtered.items() if " hidden" not in option}
    assert globex_only and globex_only < filtered.keys()
    acme_actor = next(a for a in filtered if a not in globex_only)
    chosen = actor_options(
        client.get(url, {"tenant": "globex", "actor": acme_actor}).content.decode()
    )
    assert " hidden" not in chosen[acme_actor] and " selected" in chosen[acme_actor]
    assert " selected" not in filtered[acme_actor]
