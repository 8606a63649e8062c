"""The list pipeline: filters, keyset pages, the capped count, bad parameters."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auditui import query
from auditui.apps_registry import APPS
from dmobs.models import AuditLog
from tests.auditui.conftest import bulk_platform_entries, make_entry
from tests.auditui.helpers import LIST_URLS, entries_by_id, row_ids

pytestmark = pytest.mark.django_db


def more_url(response) -> str | None:
    html = response.content.decode()
    marker = 'class="button" href="'
    if marker not in html:
        return None
    return html.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")


def walk(client, url: str, between=None, **headers) -> list[str]:
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url, **headers)
        assert response.status_code == 200
        seen += row_ids(response)
        url = more_url(response)
        pages += 1
        if between and url:
            between(pages)
    return seen


@pytest.mark.parametrize("htmx", [False, True])
def test_keyset_walk_returns_every_entry_once_with_inserts_between_pages(world, client, htmx):
    """Walk a filtered Manage view page by page while new entries arrive."""
    client.force_login(world.users["root"])
    humans = set(AuditLog.objects.filter(actor_type="human").values_list("pk", flat=True))
    rng = random.Random(7)

    def insert(page: int) -> None:
        # Newer entries (they sort before the cursor) and one with an old
        # timestamp that a replayed spool might bring.
        for i in range(3):
            AuditLog.objects.bulk_create(
                [
                    make_entry(
                        tenant=world.tenants["acme"],
                        actor=("human", "late", "Late Larry"),
                        created_at=datetime.now(UTC) + timedelta(seconds=i),
                        rng=rng,
                    )
                ]
            )

    url = f"{LIST_URLS['manage']}?range=all&actor_type=human"
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    first = client.get(url)
    seen = row_ids(first)
    next_url = more_url(first)
    insert(0)
    seen += walk(client, next_url, between=insert, **headers)
    assert len(seen) == len(set(seen))
    expected = humans
    late = set(AuditLog.objects.filter(actor_name="Late Larry").values_list("pk", flat=True))
    got = set(seen) - late
    assert got == expected
    assert len(seen) > 100  # several pages


def test_walk_ties_on_created_at_are_broken_by_id(world):
    """Many entries at the very same instant still page without loss or repeats."""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(3)
    AuditLog.objects.bulk_create(
        [
            make_entry(
                tenant=world.tenants["initech"],
                actor=("agent", "a", "Tie Agent"),
                created_at=stamp,
                rng=rng,
            )
            for _ in range(120)
        ]
    )
    qs = AuditLog.objects.filter(actor_name="Tie Agent").order_by("-created_at", "-id")
    seen, cursor = [], None
    while True:
        page = query.page_entries(qs, cursor=cursor, size=50)
        seen += [e.pk for e in page.entries]
        if not page.next_cursor:
            break
        cursor = query.decode_cursor(page.next_cursor)
    assert len(seen) == 120 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


def test_count_is_exact_to_1000_then_capped(world, client):
    client.force_login(world.users["root"])
    html = client.get(f"{LIST_URLS['manage']}?range=all").content.decode()
    total = AuditLog.objects.count()
    assert f"<strong>{total}</strong>" in html
    bulk_platform_entries(1000, seed=5)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"{LIST_URLS['manage']}?range=all").content.decode()
    assert "<strong>1,000+</strong>" in html
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 1001" in sql.upper() for sql in counts)


def test_default_range_is_30_days_and_from_to_are_viewer_days(world, client):
    sarah = world.users["sarah"]  # Europe/Berlin
    client.force_login(sarah)
    ids = set(row_ids(client.get(f"{LIST_URLS['dashboard']}?action=created")))
    cutoff = timezone.now() - timedelta(days=30)
    assert ids
    assert all(e.created_at >= cutoff for e in entries_by_id(ids).values())
    old = [e for e in world.of_tenant("acme") if e.created_at < cutoff - timedelta(days=1)]
    assert old

    # An entry at 23:30 UTC on Jan 1 is on Jan 2 in Berlin.
    rng = random.Random(1)
    late = make_entry(
        tenant=world.tenants["acme"],
        actor=("human", "x", "Night Owl"),
        created_at=datetime(2026, 1, 1, 23, 30, tzinfo=UTC),
        rng=rng,
    )
    AuditLog.objects.bulk_create([late])
    day2 = row_ids(client.get(f"{LIST_URLS['dashboard']}?from=2026-01-02&to=2026-01-02"))
    day1 = row_ids(client.get(f"{LIST_URLS['dashboard']}?from=2026-01-01&to=2026-01-01"))
    assert late.pk in day2
    assert late.pk not in day1


def test_filters_narrow_and_q_searches_three_fields(world, client):
    client.force_login(world.users["root"])
    base = f"{LIST_URLS['manage']}?range=all"
    sample = world.of_tenant("globex")[0]
    checks = {
        f"&action={sample.action}": lambda e: e.action == sample.action,
        f"&actor={sample.actor_id}": lambda e: e.actor_id == sample.actor_id,
        f"&resource_type={sample.resource_type}": lambda e: e.resource_type == sample.resource_type,
        "&actor_type=agent": lambda e: e.actor_type == "agent",
        "&tenant=globex&action=created": lambda e: (
            e.tenant_id == world.tenants["globex"].ref_id and e.action == "created"
        ),
        f"&trace={sample.trace_id}": lambda e: e.trace_id == sample.trace_id,
        "&q=gloria": lambda e: "gloria" in (e.actor_name + e.description).lower(),
        f"&q={sample.resource_name.upper()}": lambda e: (
            sample.resource_name.lower() in (e.resource_name or "").lower() + e.description.lower()
        ),
    }
    for suffix, predicate in checks.items():
        ids = row_ids(client.get(base + suffix))
        assert ids, suffix
        assert all(predicate(e) for e in entries_by_id(ids).values()), suffix


def test_pushed_url_round_trips(world, client):
    """The URL of the list (what htmx pushes) rebuilds the same view, page links keep filters."""
    client.force_login(world.users["rita"])
    url = f"{LIST_URLS['portal']}?tenant=acme&range=all"
    first = client.get(url)
    again = client.get(url)
    assert row_ids(first) == row_ids(again)
    next_url = more_url(first)
    assert next_url
    params = parse_qs(urlsplit(next_url).query)
    assert params["tenant"] == ["acme"] and params["range"] == ["all"] and "cursor" in params


BAD_VALUES = [
    ("range", "1y"),
    ("range", "30D"),
    ("from", "2026-13-01"),
    ("from", "yesterday"),
    ("to", "2026-02-30"),
    ("from", "0001-01-01"),
    # Any stored action or resource type is a valid filter (issue 13: the
    # platform writes "autoActivated"); too long or control characters are not.
    ("action", "x" * 201),
    ("action", "tab\there"),
    ("resource_type", "x" * 201),
    ("actor_type", "robot"),
    ("tenant", "../etc"),
    ("cursor", "not-a-cursor"),
    ("cursor", "MjAyNg"),
    ("trace", "xyz"),
    ("trace", "0" * 32),
    ("q", "a" * 201),
    ("q", "nul\x00byte"),
    ("actor", "x" * 201),
]


@pytest.mark.parametrize("app,username", [("dashboard", "sarah"), ("manage", "root")])
@pytest.mark.parametrize("key,value", BAD_VALUES)
def test_bad_values_get_a_400_with_a_message(world, client, app, username, key, value):
    client.force_login(world.users[username])
    base = LIST_URLS[app]
    qs = QueryDict(mutable=True)
    qs[key] = value
    for url, headers in (
        (f"{base}?{qs.urlencode()}", {}),
        (f"{base}?{qs.urlencode()}", {"HTTP_HX_REQUEST": "true"}),
        (f"{base}/export?format=csv&{qs.urlencode()}", {}),
    ):
        response = client.get(url, **headers)
        assert response.status_code == 400, url
        assert 'role="alert"' in response.content.decode()


def test_from_after_to_and_unknown_format_are_400(world, client):
    client.force_login(world.users["root"])
    assert client.get(f"{LIST_URLS['manage']}?from=2026-02-01&to=2026-01-01").status_code == 400
    assert client.get(f"{LIST_URLS['manage']}/export?format=xlsx").status_code == 400
    assert client.get(f"{LIST_URLS['manage']}/export").status_code == 400


def test_malformed_entry_ids_are_404(world, client):
    client.force_login(world.users["root"])
    for bad in ("%00", "a" * 65, "x'y"):
        assert client.get(f"{LIST_URLS['manage']}/{bad}/").status_code == 404


def test_choices_come_from_one_function(world):
    """Swappable: filter_choices() is the one place choices are computed."""
    scope = query.Scope(
        app=APPS["manage"],
        queryset=AuditLog.objects.filter(tenant_id=world.tenants["initech"].ref_id),
        tenants=(world.tenants["initech"],),
        controls=frozenset(),
    )
    choices = query.filter_choices(scope=scope)
    # The oracle: what initech's rows hold, read straight from the table.
    rows = AuditLog.objects.filter(tenant_id=world.tenants["initech"].ref_id)
    expected_actors = set(rows.values_list("actor_id", "actor_name", "actor_type"))
    assert expected_actors, "the world has initech entries to choose from"
    assert {a[1] for a in expected_actors} == {"Ivan Initech", "Olga Multi"}
    assert set(choices.actors) == expected_actors
    assert set(choices.actions) == set(rows.values_list("action", flat=True))
    assert set(choices.resource_types) == set(rows.values_list("resource_type", flat=True))
    assert [t.slug for t in choices.tenants] == ["initech"]


def test_choices_follow_new_entries_at_once_and_are_reused_while_nothing_changes(world):
    """Facet choices are kept per process (PostgreSQL) and must still show a new
    action or actor on the very next request."""
    tenant = world.tenants["initech"]
    scope = query.Scope(
        app=APPS["manage"],
        queryset=AuditLog.objects.filter(tenant_id=tenant.ref_id),
        tenants=(tenant,),
        controls=frozenset(),
    )
    first = query.filter_choices(scope=scope)
    with CaptureQueriesContext(connection) as again:
        assert query.filter_choices(scope=scope) == first
    if connection.vendor == "postgresql":
        # The version probe and nothing over audit_facets' rows.
        assert not [q for q in again.captured_queries if "DISTINCT" in q["sql"]]
    AuditLog.objects.bulk_create(
        [
            make_entry(
                tenant=tenant,
                actor=("agent", "agent-new-1", "Newcomer Bot"),
                created_at=timezone.now(),
                rng=random.Random(3),
                action="quarantined",
            )
        ]
    )
    after = query.filter_choices(scope=scope)
    assert "quarantined" in after.actions and "quarantined" not in first.actions
    assert ("agent-new-1", "Newcomer Bot", "agent") in after.actors
    # Another scope is not answered from this one's entry.
    other = query.Scope(
        app=scope.app,
        queryset=AuditLog.objects.filter(tenant_id=world.tenants["acme"].ref_id),
        tenants=(world.tenants["acme"],),
        controls=frozenset(),
    )
    assert "quarantined" not in query.filter_choices(scope=other).actions


def facet_probes(queries) -> list[str]:
    return [q["sql"] for q in queries if "audit_facets" in q["sql"]]


@pytest.mark.parametrize(
    ("username", "app"), [("sarah", "dashboard"), ("rita", "portal"), ("root", "manage")]
)
def test_list_page_reads_count_and_facet_version_in_one_round_trip(world, client, username, app):
    """A list page's filter choices still show a new action on the very next
    request, while the facet table's version rides on the capped count's query
    (PostgreSQL): no round trip of its own, no DISTINCT while nothing changed."""
    client.force_login(world.users[username])
    url = f"{LIST_URLS[app]}?range=all"
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()
    assert 'value="quarantined"' not in html
    if connection.vendor == "postgresql":
        (probe,) = facet_probes(queries)
        assert "COUNT(" in probe.upper() and "LIMIT 1001" in probe.upper(), probe
        assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]
    AuditLog.objects.bulk_create(
        [
            make_entry(
                tenant=world.tenants["acme"],
                actor=("agent", "agent-new-2", "Newcomer Bot"),
                created_at=timezone.now(),
                rng=random.Random(4),
                action="quarantined",
            )
        ]
    )
    html = client.get(url).content.decode()
    assert '<option value="quarantined">quarantined</option>' in html


@pytest.mark.parametrize(
    ("username", "app", "params"),
    [
        ("sarah", "dashboard", {}),
        ("rita", "portal", {}),  # a merge of per-tenant walks
        ("rita", "portal", {"action": "approved"}),
        ("root", "manage", {"actor": "u-nobody-at-all"}),  # an actor of no tenant: no walk
        ("root", "manage", {"actor_type": "agent"}),
        ("sarah", "dashboard", {"q": "newsletter"}),  # free text: counted unordered
    ],
)
def test_count_with_the_facet_version_counts_what_the_list_holds(
    world, client, username, app, params
):
    client.force_login(world.users[username])
    full = client.get(LIST_URLS[app], {**params, "range": "all"})
    url = more_url(full)
    ids = row_ids(full)
    while url:
        page = client.get(url, HTTP_HX_REQUEST="true")
        ids += row_ids(page)
        url = more_url(page)
    html = full.content.decode()
    assert ids or "u-nobody" in str(params)
    assert f"<strong>{len(ids):,}</strong>" in html, len(ids)


def test_every_tenant_for_the_super_admin_in_name_order(world, client):
    """Manage's tenants (filter, column, actor labels) come from one plain query
    (``Tenant.objects.every``), read on every request: a new tenant shows at once."""
    from dmobs.models import Tenant

    expected = list(Tenant.objects.order_by("name", "pk"))
    got = Tenant.objects.every()
    assert [(t.pk, t.ref_id, t.name, t.slug, t.plan) for t in got] == [
        (t.pk, t.ref_id, t.name, t.slug, t.plan) for t in expected
    ]
    assert got[0].created_at == expected[0].created_at  # loads when read
    client.force_login(world.users["root"])
    Tenant.objects.create(name="Zeta Newco", slug="zeta-newco")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(LIST_URLS["manage"]).content.decode()
    assert '<option value="zeta-newco">Zeta Newco</option>' in html
    assert len([q for q in queries if "dmobs_tenant" in q["sql"]]) == 1
