"""The search box's qualifiers (issue 16, item 2): parser, mapping onto the filters'
own parameters, 400s that point at the token, and scoping (a qualifier only narrows)."""

from __future__ import annotations

import html

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditui.errors import InvalidParams
from auditui.filters import ACTION, ACTOR, ACTOR_TYPE, FILTERS, PERIOD, RESOURCE_TYPE
from auditui.paging import PAGE_SIZE
from auditui.search import QUALIFIERS, qualifier_params, tokens
from dmobs.models import AuditLog
from tests.auditui.helpers import LIST_URLS, entries_by_id, ndjson_records, row_ids

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_each_qualifier_is_declared_on_its_filter():
    assert {f.qualifier: f for f in FILTERS if f.qualifier} == QUALIFIERS
    assert {"actor", "action", "type", "resource", "tenant", "trace", "created"} <= set(QUALIFIERS)
    assert QUALIFIERS["type"] is ACTOR_TYPE and QUALIFIERS["created"] is PERIOD


@pytest.mark.parametrize(
    ("text", "params", "words"),
    [
        ("action:logged_in", {"action": "logged_in"}, ""),
        ("ACTOR:u_1 failed login", {"actor": "u_1"}, "failed login"),
        ("type:agent", {"actor_type": "agent"}, ""),
        ("resource:strategy", {"resource_type": "strategy"}, ""),
        ("resource:strategy/st_9", {"resource_type": "strategy", "resource_id": "st_9"}, ""),
        ("tenant:acme", {"tenant": "acme"}, ""),
        (f"trace:{TRACE_ID}", {"trace": TRACE_ID}, ""),
        (TRACE_ID.upper(), {"trace": TRACE_ID}, ""),
        ("created:>=2026-11-01", {"from": "2026-11-01", "_strict_from": ""}, ""),
        ("created:2026-11-01..2026-11-15", {"from": "2026-11-01", "to": "2026-11-15"}, ""),
        ("created:2026-11-03", {"from": "2026-11-03", "to": "2026-11-03"}, ""),
        ('actor:"Ada Lovelace" "two words"', {"actor": "Ada Lovelace"}, "two words"),
        ("action:a action:a", {"action": "a"}, ""),
        ("plain -words", {}, "plain -words"),
        ("-action:logged_in", {"not_action": ["logged_in"]}, ""),
        (
            '-action:a -action:b -action:a type:agent -type:"system"',
            {"not_action": ["a", "b"], "actor_type": "agent", "not_type": ["system"]},
            "",
        ),
        ("-resource:strategy/st_9 -resource:/x", {"not_resource": ["strategy/st_9", "/x"]}, ""),
        ("-tenant:platform", {"not_tenant": ["platform"]}, ""),
    ],
)
def test_qualifiers_map_onto_the_filters_parameters(text, params, words):
    assert qualifier_params(text) == (params, words)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("acter:u_1", "unknown qualifier `acter:` — did you mean `actor:`?"),
        ("zzz:1", "unknown qualifier `zzz:`"),
        ("action:", "`action:` needs a value"),
        ('actor:"open', 'the quote in `actor:"open` is never closed'),
        ("created:yesterday", "`created:yesterday`"),
        ("action:a action:b", "`action:b` conflicts"),
        ("-created:2026-11-01", "`-created:2026-11-01` — created: cannot be negated"),
        ("-action:", "`-action:` needs a value"),
        ("-resource:strategy/", "`-resource:strategy/` needs an id after the slash"),
        ("-acter:u_1", "unknown qualifier `acter:` — did you mean `actor:`?"),
    ],
)
def test_errors_point_at_the_token(text, message):
    with pytest.raises(InvalidParams) as caught:
        qualifier_params(text)
    assert message in str(caught.value)


NAME = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(
    action=st.none() | NAME,
    actor=st.none() | st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,20}", fullmatch=True),
    kind=st.none() | NAME,
    words=st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=3),
    order=st.randoms(use_true_random=False),
)
def test_any_arrangement_of_qualifiers_and_words_parses_back(action, actor, kind, words, order):
    parts = list(words)
    expected = {}
    if action:
        parts.append(f"{ACTION.qualifier}:{action}")
        expected["action"] = action
    if actor:
        parts.append(f'{ACTOR.qualifier}:"{actor.strip()}"')
        expected["actor"] = actor.strip()
    if kind:
        parts.append(f"{RESOURCE_TYPE.qualifier}:{kind}/x_{kind}")
        expected.update(resource_type=kind, resource_id=f"x_{kind}")
    order.shuffle(parts)
    found, free = qualifier_params(" ".join(parts))
    assert found == expected
    assert sorted(free.split()) == sorted(w for w in words)
    assert all(t.text for t in tokens(" ".join(parts)))


@pytest.mark.django_db
def test_a_qualifier_search_shows_what_the_controls_show(world, client):
    client.force_login(world.users["root"])
    entry = world.entries[0]
    by_params = client.get(
        f"{LIST_URLS['manage']}?action={entry.action}&actor_type={entry.actor_type}&range=all"
    )
    by_box = client.get(
        LIST_URLS["manage"],
        {"q": f"action:{entry.action} type:{entry.actor_type}", "range": "all"},
    )
    assert by_box.status_code == 200
    assert row_ids(by_box) and sorted(row_ids(by_box)) == sorted(row_ids(by_params))
    page = html.unescape(by_box.content.decode())
    # The controls follow the box: the action and actor type are selected there...
    assert f'<option value="{entry.action}" selected>' in page
    assert f'<option value="{entry.actor_type}" selected>' in page
    # ...and links (export, chips) carry the filters' own parameters.
    assert f"export?action={entry.action}&actor_type={entry.actor_type}&range=all" in page


@pytest.mark.django_db
def test_resource_and_trace_are_exact_matches(world, client):
    client.force_login(world.users["root"])
    entry = next(e for e in world.entries if e.resource_id)
    response = client.get(
        LIST_URLS["manage"],
        {"q": f"resource:{entry.resource_type}/{entry.resource_id}", "range": "all"},
    )
    expected = {
        str(e.pk)
        for e in world.entries
        if (e.resource_type, e.resource_id) == (entry.resource_type, entry.resource_id)
    }
    assert set(row_ids(response)) == expected
    traced = next((e for e in world.entries if e.trace_id), None)
    if traced is not None:
        response = client.get(LIST_URLS["manage"], {"q": traced.trace_id, "range": "all"})
        assert set(row_ids(response)) == {
            str(e.pk) for e in world.entries if e.trace_id == traced.trace_id
        }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("acter:u_1", "unknown qualifier `acter:` — did you mean `actor:`?"),
        ("type:robot", "'actor_type' must be one of"),
        ("created:2026-13-01", "'from' must be a date"),
    ],
)
def test_bad_qualifiers_are_a_400_naming_the_token(world, client, q, message):
    client.force_login(world.users["root"])
    response = client.get(LIST_URLS["manage"], {"q": q})
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())


@pytest.mark.django_db
def test_a_qualifier_only_narrows_the_scope(world, client):
    """A reviewer's tenant: qualifier reaches no other tenant (same 400 as the control)."""
    client.force_login(world.users["rita"])
    outside = client.get(LIST_URLS["portal"], {"q": "tenant:initech"})
    assert outside.status_code == 400
    assert "no tenant 'initech' in this view" in html.unescape(outside.content.decode())
    # type:system is not in a reviewer's scope: nothing, never platform rows.
    response = client.get(LIST_URLS["portal"], {"q": "type:system", "range": "all"})
    assert response.status_code == 200 and row_ids(response) == []
    disagree = client.get(LIST_URLS["portal"], {"q": "action:a", "action": "b"})
    assert disagree.status_code == 400
    assert "disagrees with the 'action' filter" in html.unescape(disagree.content.decode())


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            "action": st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
            "actor": st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
            "actor_type": st.sampled_from(["human", "agent", "system"]),
            "resource_type": NAME,
            "resource_id": NAME,
            "tenant": NAME,
            "trace": st.just(TRACE_ID),
            "id": NAME,
            "not_action": st.lists(NAME, min_size=1, max_size=3),
            "not_resource": st.lists(st.tuples(NAME, NAME).map("/".join), min_size=1, max_size=2),
            "not_type": st.lists(st.sampled_from(["human", "agent", "system"]), min_size=1),
            "from": st.dates().map(lambda d: d.replace(year=2026).isoformat()),
            "q": st.from_regex(r"[a-z]{1,8}( [a-z]{1,8}){0,2}", fullmatch=True),
        },
    )
)
def test_the_box_text_of_a_view_reads_back_as_the_same_view(values):
    """box_text() is what the box shows for a URL; typing it in gives that URL."""
    from django.http import QueryDict

    from auditui.query import parse_params
    from auditui.search import box_text

    query = QueryDict(mutable=True)
    for key, value in values.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    try:
        params = parse_params(query)
    except InvalidParams:
        return  # values the filters refuse (spaces only, too long): not a view
    box = QueryDict(mutable=True)
    box["q"] = box_text(params)
    again = parse_params(box)
    assert again.explicit == params.explicit


@pytest.mark.django_db
def test_id_finds_one_entry_in_scope_only(world, client):
    acme = next(e for e in world.entries if e.tenant_id == world.tenants["initech"].ref_id)
    client.force_login(world.users["root"])
    response = client.get(LIST_URLS["manage"], {"q": f"id:{acme.pk}", "range": "all"})
    assert row_ids(response) == [str(acme.pk)]
    client.force_login(world.users["rita"])  # does not review Initech
    response = client.get(LIST_URLS["portal"], {"q": f"id:{acme.pk}", "range": "all"})
    assert response.status_code == 200 and row_ids(response) == []


@pytest.mark.django_db
def test_a_negated_qualifier_leaves_those_entries_out(world, client):
    """``-action:X`` (and its parameter ``not_action``) keeps every other entry of the
    scope; exclusions add up, the box shows them back, and each has its own chip."""
    client.force_login(world.users["root"])
    actions = sorted({e.action for e in world.entries})
    first, second = actions[0], actions[1]
    response = client.get(
        LIST_URLS["manage"], {"q": f"-action:{first} -action:{second}", "range": "all"}
    )
    assert response.status_code == 200
    kept = AuditLog.objects.exclude(action__in=[first, second]).order_by("-created_at", "-id")
    expected = [str(pk) for pk in kept.values_list("pk", flat=True)[:PAGE_SIZE]]
    assert row_ids(response) == expected and expected
    same = client.get(f"{LIST_URLS['manage']}?not_action={first}&not_action={second}&range=all")
    assert row_ids(same) == expected
    page = html.unescape(response.content.decode())
    assert f'data-box="-action:{first} -action:{second}"' in page
    # One chip per excluded value; removing one keeps the other.
    assert page.count('<span class="chip-label">Not action:</span>') == 2
    assert f'href="/manage/audit?not_action={second}&range=all"' in page
    assert f'href="/manage/audit?not_action={first}&range=all"' in page
    # Links out of this view (export) carry the exclusions.
    assert f"export?not_action={first}&not_action={second}&range=all" in page


@pytest.mark.django_db
def test_excluding_a_tenant_keeps_platform_entries_and_stays_in_scope(world, client):
    client.force_login(world.users["root"])
    acme = world.tenants["acme"]
    response = client.get(LIST_URLS["manage"], {"q": "-tenant:acme", "range": "all"})
    shown = entries_by_id(row_ids(response))
    assert shown and all(e.tenant_id != acme.ref_id for e in shown.values())
    assert any(e.tenant_id is None for e in shown.values())  # platform entries stay
    no_platform = client.get(LIST_URLS["manage"], {"q": "-tenant:platform", "range": "all"})
    kept = entries_by_id(row_ids(no_platform))
    assert kept and all(e.tenant_id for e in kept.values())
    # A reviewer cannot name (or probe) a tenant outside the scope by excluding it.
    client.force_login(world.users["rita"])
    outside = client.get(LIST_URLS["portal"], {"q": "-tenant:initech"})
    assert outside.status_code == 400
    assert "no tenant 'initech' in this view" in html.unescape(outside.content.decode())


@pytest.mark.django_db
def test_a_bad_excluded_value_is_a_400_naming_its_parameter(world, client):
    client.force_login(world.users["root"])
    response = client.get(LIST_URLS["manage"], {"not_type": "robot"})
    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    assert "'not_type' (excluded actor_type)" in text and "'robot'" in text
    many = client.get(LIST_URLS["manage"], {"not_action": [f"a{i}" for i in range(21)]})
    assert many.status_code == 400
    assert "at most 20 values" in html.unescape(many.content.decode())


@pytest.mark.django_db
def test_an_export_leaves_out_what_the_view_excludes(world, client):
    client.force_login(world.users["root"])
    action = world.entries[0].action
    response = client.get(
        "/manage/audit/export", {"q": f"-action:{action}", "range": "all", "format": "ndjson"}
    )
    assert response.status_code == 200
    records = ndjson_records(response)
    assert records and all(r["action"] != action for r in records)
    # Every other entry is there (with the sign-in's and the export's own entries).
    assert {r["id"] for r in records} >= {str(e.pk) for e in world.entries if e.action != action}
