"""Investigating from the screen: click-to-filter and chips, a resource's history,
the live tail's polls, and ``tenant=platform`` (issue 16)."""

from __future__ import annotations

import html as html_lib
import random
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from auditui.paging import TAIL_LIMIT, decode_cursor, encode_cursor
from dmobs.models import AuditLog
from tests.auditui.conftest import make_entry
from tests.auditui.helpers import LIST_URLS, row_ids

pytestmark = pytest.mark.django_db

HREF_RE = r'<a class="{cls}" href="([^"]+)"'


def hrefs(html: str, cls: str) -> list[str]:
    return [html_lib.unescape(h) for h in re.findall(HREF_RE.format(cls=re.escape(cls)), html)]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_row_links_add_one_filter_and_keep_the_others(world, client):
    client.force_login(world.users["rita"])
    url = f"{LIST_URLS['portal']}?tenant=globex&range=all&q=Globex"
    page = client.get(url).content.decode()
    actor_links = hrefs(page, "actor filter-link")
    action_links = re.findall(r'<a class="tag tag-[a-z_]+ filter-link" href="([^"]+)"', page)
    tenant_links = hrefs(page, "filter-link")
    assert actor_links and action_links and tenant_links
    for link in actor_links:
        q = query(html_lib.unescape(link))
        assert q["tenant"] == "globex" and q["range"] == "all" and q["q"] == "Globex"
        assert q["actor"] in {"u-gloria", "agent-globex"}
    first_actor = html_lib.unescape(actor_links[0])
    filtered = client.get(first_actor)
    actor = query(first_actor)["actor"]
    expected = {
        e.pk
        for e in world.entries
        if e.actor_id == actor and e.tenant_id == world.tenants["globex"].ref_id
    }
    assert row_ids(filtered) and set(row_ids(filtered)) <= expected
    q = query(html_lib.unescape(action_links[0]))
    assert set(q) == {"tenant", "range", "q", "action"}
    assert {query(link)["tenant"] for link in tenant_links} == {"globex"}


def test_chips_name_each_filter_and_remove_only_it(world, client):
    client.force_login(world.users["root"])
    sarah = world.users["sarah"]
    url = (
        f"{LIST_URLS['manage']}?tenant=acme&actor={sarah.ref_id}&action=approved"
        "&resource_type=strategy&resource_id=st_1&range=all"
    )
    page = client.get(url).content.decode()
    chips = re.findall(
        r'<span class="chip-label">([^<]+):</span> <span class="chip-value">([^<]*)</span> '
        r'<a class="chip-remove" href="([^"]+)"',
        page,
    )
    labels = {label: (value, query(html_lib.unescape(link))) for label, value, link in chips}
    assert set(labels) == {"Tenant", "Actor", "Action", "Resource"}
    assert labels["Tenant"][0] == "Acme"
    assert labels["Resource"][0] == "strategy/st_1"
    assert "tenant" not in labels["Tenant"][1] and labels["Tenant"][1]["action"] == "approved"
    assert "actor" not in labels["Actor"][1] and labels["Actor"][1]["tenant"] == "acme"
    assert set(labels["Resource"][1]) == {"tenant", "actor", "action", "range"}


def test_detail_links_filter_by_actor_action_resource_tenant_and_trace(world, client):
    client.force_login(world.users["root"])
    entry = next(e for e in world.entries if e.tenant_id == world.tenants["acme"].ref_id)
    page = client.get(f"{LIST_URLS['manage']}/{entry.pk}/?action={entry.action}").content.decode()
    actor = query(hrefs(page, "actor filter-link")[0])
    assert actor == {"action": entry.action, "actor": entry.actor_id}
    resource = query(hrefs(page, "filter-link filter-resource")[0])
    assert resource["resource_type"] == entry.resource_type
    assert resource["resource_id"] == entry.resource_id
    assert query(hrefs(page, "filter-link filter-tenant")[0])["tenant"] == "acme"
    trace = query(hrefs(page, "filter-link filter-trace")[0])
    assert trace == {"action": entry.action, "trace": entry.trace_id, "range": "all"}
    # Each link works: the entry is among the results of the resource filter.
    listed = client.get(hrefs(page, "filter-link filter-resource")[0].replace("&amp;", "&"))
    assert listed.status_code == 200
    # The back link keeps the list's filters.
    back = re.search(r'<p class="back"><a href="([^"]+)"', page).group(1)
    assert query(html_lib.unescape(back)) == {"action": entry.action}


def test_platform_is_a_tenant_for_the_super_admin_only(world, client):
    client.force_login(world.users["root"])
    ids = set(row_ids(client.get(f"{LIST_URLS['manage']}?tenant=platform&range=all")))
    platform = set(AuditLog.objects.filter(tenant_id=None).values_list("id", flat=True))
    assert ids and ids <= platform
    # Exporting the platform's entries is audited as a platform-level export.
    response = client.get(f"{LIST_URLS['manage']}/export?format=ndjson&tenant=platform")
    b"".join(response.streaming_content)
    exported = AuditLog.objects.get(action="exported")
    assert exported.tenant_id is None
    # A reviewer has no platform: the same value is an unknown tenant.
    client.force_login(world.users["rita"])
    response = client.get(f"{LIST_URLS['portal']}?tenant=platform")
    assert response.status_code == 400
    assert "no tenant &#x27;platform&#x27;" in response.content.decode()


# --- A resource's history


def resource_entries(world, tenant, n: int, *, start: datetime, same_time: bool = False):
    rng = random.Random(7)
    entries = [
        make_entry(
            tenant=tenant,
            actor=("agent", "agent-config-bot", "Config Bot"),
            created_at=start if same_time else start + timedelta(minutes=i),
            rng=rng,
            action="updated",
            resource_type="agent_config",
            resource_id="ac_1",
            resource_name="Planner config",
            before={"temperature": i},
            after={"temperature": i + 1},
        )
        for i in range(n)
    ]
    AuditLog.objects.bulk_create(entries)
    return entries


def test_history_lists_the_resource_oldest_first_in_scope_with_diffs(world, client):
    start = datetime.now(UTC) - timedelta(days=200)
    acme = resource_entries(world, world.tenants["acme"], 60, start=start)
    # Same resource id in another tenant, and a system entry: not in sarah's or rita's view.
    initech = resource_entries(world, world.tenants["initech"], 3, start=start)
    client.force_login(world.users["sarah"])
    url = f"{LIST_URLS['dashboard']}/history?resource_type=agent_config&resource_id=ac_1"
    page = client.get(url).content.decode()
    steps = re.findall(r'<li class="step" id="step-([0-9a-f]+)">', page)
    assert steps == [e.pk for e in acme[:50]]  # oldest first, one page
    assert "History of this resource" in page and "Planner config" in page
    assert page.count('<table class="diff">') == 50
    assert '<code class="val old">0</code>' in page and '<code class="val new">1</code>' in page
    assert not set(steps) & {e.pk for e in initech}
    # "Show later changes": the rest, no gap, no repeat.
    more = html_lib.unescape(re.search(r'class="button" href="([^"]+)"', page).group(1))
    later = client.get(more, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in later
    assert re.findall(r'<li class="step" id="step-([0-9a-f]+)">', later) == [
        e.pk for e in acme[50:]
    ]
    assert "Show later changes" not in later


def test_history_pages_through_entries_at_the_same_moment(world, client):
    entries = resource_entries(world, None, 120, start=datetime.now(UTC), same_time=True)
    client.force_login(world.users["root"])
    url = f"{LIST_URLS['manage']}/history?resource_type=agent_config&resource_id=ac_1"
    seen: list[str] = []
    while url:
        page = client.get(url).content.decode()
        seen += re.findall(r'<li class="step" id="step-([0-9a-f]+)">', page)
        found = re.search(r'class="button" href="([^"]+)"', page)
        url = html_lib.unescape(found.group(1)) if found else ""
    assert seen == sorted(e.pk for e in entries)


@pytest.mark.parametrize(
    "params,message",
    [
        ("resource_type=strategy", "needs both"),
        ("resource_id=x", "needs both"),
        ("resource_type=strategy&resource_id=x&sort=asc", "Unknown query parameter"),
        # Any stored resource type is a valid value (issue 13); an overlong one is not.
        ("resource_type=" + "b" * 201 + "&resource_id=x", "longer than 200"),
    ],
)
def test_history_needs_a_resource(world, client, params, message):
    client.force_login(world.users["root"])
    response = client.get(f"{LIST_URLS['manage']}/history?{params}")
    assert response.status_code == 400
    assert message in html_lib.unescape(response.content.decode())


def test_detail_links_to_the_history(world, client):
    client.force_login(world.users["root"])
    entry = world.entries[3]
    page = client.get(f"{LIST_URLS['manage']}/{entry.pk}/").content.decode()
    link = html_lib.unescape(re.search(r'class="history-link" href="([^"]+)"', page).group(1))
    slug = next((t.slug for t in world.tenants.values() if t.ref_id == entry.tenant_id), "platform")
    assert query(link) == {
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "tenant": slug,
    }
    steps = re.findall(
        r'<li class="step" id="step-([0-9a-f]+)">', client.get(link).content.decode()
    )
    assert entry.pk in steps


# --- The live tail


def tail(client, url: str, since: str, **headers):
    sep = "&" if "?" in url else "?"
    return client.get(f"{url}{sep}since={since}", HTTP_HX_REQUEST="true", **headers)


def add_globex(world, n: int, *, at: datetime, same_time: bool = False) -> list[AuditLog]:
    rng = random.Random(n)
    entries = [
        make_entry(
            tenant=world.tenants["globex"],
            actor=("human", "u-gloria", "Gloria Globex"),
            created_at=at if same_time else at + timedelta(milliseconds=i),
            rng=rng,
        )
        for i in range(n)
    ]
    AuditLog.objects.bulk_create(entries)
    return entries


def test_tail_returns_only_newer_entries_newest_first_then_nothing(world, client, settings):
    settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS = 0
    client.force_login(world.users["rita"])
    url = f"{LIST_URLS['portal']}?tenant=globex"
    page = client.get(url).content.decode()
    cursor = re.search(r'data-tail-cursor="([^"]+)"', page).group(1)
    first = row_ids(client.get(url))[0]
    assert decode_cursor(cursor).id == first

    empty = tail(client, url, cursor)
    assert empty.status_code == 204 and empty.content == b""
    assert empty["X-Tail-Count"] == "0" and empty["X-Tail-Cursor"] == cursor

    new = add_globex(world, 3, at=datetime.now(UTC) - timedelta(seconds=1))
    # An entry of another tenant (in rita's scope, not in the filter) is not part of it.
    add_globex(world, 0, at=datetime.now(UTC))
    response = tail(client, url, cursor)
    assert response.status_code == 200
    assert row_ids(response) == [e.pk for e in reversed(new)]
    assert response["X-Tail-Count"] == "3"
    assert "data-new" in response.content.decode() and "Load more" not in response.content.decode()
    cursor = response["X-Tail-Cursor"]
    assert decode_cursor(cursor).id == new[-1].pk
    assert tail(client, url, cursor).status_code == 204


def test_tail_has_no_gap_and_no_repeat_across_polls(world, client, settings):
    """More than one poll's worth, many at the same instant: every entry exactly once."""
    settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS = 0
    client.force_login(world.users["root"])
    url = f"{LIST_URLS['manage']}?tenant=globex&range=24h"
    start = datetime.now(UTC) - timedelta(seconds=5)
    cursor = encode_cursor(start - timedelta(microseconds=1), "0" * 24)
    new = add_globex(world, TAIL_LIMIT + 30, at=start, same_time=True)
    new += add_globex(world, 20, at=start + timedelta(seconds=1))
    seen: list[str] = []
    polls = 0
    while True:
        response = tail(client, url, cursor)
        polls += 1
        if response.status_code == 204:
            break
        ids = row_ids(response)
        assert len(ids) <= TAIL_LIMIT
        seen = ids + seen  # each poll goes on top
        cursor = response["X-Tail-Cursor"]
    assert polls == 3
    expected = sorted(new, key=lambda e: (e.created_at, e.pk), reverse=True)
    assert seen == [e.pk for e in expected]


def test_tail_leaves_the_last_moment_to_the_next_poll(world, client, settings):
    """Entries younger than the settle time wait for a later poll (they may still be
    overtaken by an older one that is on its way to the store)."""
    settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS = 60
    client.force_login(world.users["root"])
    url = LIST_URLS["manage"]
    cursor = encode_cursor(datetime.now(UTC) - timedelta(minutes=5), "0" * 24)
    old = add_globex(world, 1, at=datetime.now(UTC) - timedelta(minutes=2))
    add_globex(world, 1, at=datetime.now(UTC))
    response = tail(client, url, cursor)
    assert row_ids(response) == [old[0].pk]
    assert decode_cursor(response["X-Tail-Cursor"]).id == old[0].pk


def test_tail_twin_without_htmx_is_the_page_of_newer_entries(world, client, settings):
    settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS = 0
    client.force_login(world.users["rita"])
    url = f"{LIST_URLS['portal']}?tenant=globex"
    page = client.get(url).content.decode()
    twin = html_lib.unescape(re.search(r'<p class="live-twin"><a href="([^"]+)"', page).group(1))
    assert "since=" in twin
    new = add_globex(world, 2, at=datetime.now(UTC) - timedelta(seconds=1))
    response = client.get(twin)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body
    assert row_ids(response) == [e.pk for e in reversed(new)]
    assert "newer than the last check" in body


def test_tail_cursor_is_checked(world, client):
    client.force_login(world.users["root"])
    response = tail(client, LIST_URLS["manage"], "not-a-cursor")
    assert response.status_code == 400
    assert "cursor is not valid" in response.content.decode()


def test_history_is_one_tenants_resource(world, client):
    """The same resource id in two tenants is two resources: the link from an entry
    names its tenant, and only that tenant's entries are its history."""
    start = datetime.now(UTC) - timedelta(days=300)
    acme = resource_entries(world, world.tenants["acme"], 3, start=start)
    globex = resource_entries(world, world.tenants["globex"], 2, start=start)
    client.force_login(world.users["rita"])
    base = f"{LIST_URLS['portal']}/history?resource_type=agent_config&resource_id=ac_1"
    steps = re.compile(r'<li class="step" id="step-([0-9a-f]+)">')
    assert steps.findall(client.get(f"{base}&tenant=acme").content.decode()) == [e.pk for e in acme]
    assert steps.findall(client.get(f"{base}&tenant=globex").content.decode()) == [
        e.pk for e in globex
    ]
    both = steps.findall(client.get(base).content.decode())
    assert set(both) == {e.pk for e in acme + globex}
    page = client.get(f"{LIST_URLS['portal']}/{acme[0].pk}/").content.decode()
    link = html_lib.unescape(re.search(r'class="history-link" href="([^"]+)"', page).group(1))
    assert query(link)["tenant"] == "acme"
    # A tenant outside the scope is refused like a missing one.
    response = client.get(f"{base}&tenant=initech")
    assert response.status_code == 400
