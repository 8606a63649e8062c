"""Hostile query strings and ids against every screen endpoint of the three apps.

Property-based (hypothesis): whatever the query string of the list, its two
htmx fragments (results, more rows), the detail and the export, the answer is
never a 5xx. A query made only of valid values is a 200; anything else is a
200 (harmless input) or a 400 whose body says what is wrong (an unknown
parameter is a 400 that names it). Ids of
entries outside the viewer's scope, and ids that are not ids, are a 404.

The world (tenants, users, entries) is built once per test by the ``world``
fixture; the ``@given`` function is defined inside the test, so hypothesis
runs its examples against that data without function-scoped fixtures.
"""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from django.db import DataError, connection
from django.http import QueryDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditui.filters import FILTER_KEYS, RANGES
from auditui.paging import encode_cursor
from dmobs.models import ACTOR_TYPES, AuditLog
from tests.auditui.conftest import ACTIONS, RESOURCES, World
from tests.auditui.helpers import LIST_URLS, streamed

pytestmark = pytest.mark.django_db
DETAIL_PARAMS = FILTER_KEYS

# Who may enter each app (conftest world).
VIEWERS = {"dashboard": "sarah", "portal": "rita", "manage": "root"}
PARAMS = (
    "action",
    "actor",
    "actor_type",
    "resource_type",
    "tenant",
    "range",
    "from",
    "to",
    "q",
    "cursor",
    "trace",
    "format",
    "resource_id",
    "since",
)
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ERROR_RE = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)
DEFAULT_400 = "The request was not valid."
XSS = (
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "</td></tr><b>",
)

# Text hypothesis may draw: any Unicode scalar (no lone surrogates: an HTTP
# query string is bytes, which Django decodes as UTF-8 with replacement).
chars = st.characters(exclude_categories=("Cs",))
junk = st.text(chars, max_size=40)
nasty = st.one_of(
    junk,
    st.sampled_from(XSS),
    st.sampled_from(["\x00", "a\x00b", "\r\n", "\t", "\x7f", "\u202e", "\u200b\ufeff", " ", ""]),
    st.builds(lambda a, b: f"{a}\x00{b}", junk, junk),
    st.builds(lambda c, n: c * n, chars, st.integers(min_value=60, max_value=3000)),
    st.sampled_from(["0000-00-00", "1969-12-31", "9999-12-31", "2026-02-30", "2026-1-1", "now"]),
    st.sampled_from(["24H", "all ", "90d\n", "1y", "-1d", "HUMAN", "robot", "A" * 33, "0" * 32]),
)


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def aware(moment: datetime, minutes: int) -> datetime:
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))


# Cursors that decode but name impossible positions: years 1 and 9999 with any
# UTC offset, naive times, ids that are not ids.
hostile_cursor = st.one_of(
    st.builds(
        lambda moment, offset, entry_id: raw_cursor(
            f"{aware(moment, offset).isoformat()}|{entry_id}"
        ),
        st.datetimes(),
        st.integers(min_value=-1439, max_value=1439),
        st.one_of(st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True), junk),
    ),
    st.builds(lambda moment: raw_cursor(f"{moment.isoformat()}|abc"), st.datetimes()),
    st.builds(lambda text: raw_cursor(text), junk),
    st.builds(lambda data: base64.urlsafe_b64encode(data).decode(), st.binary(max_size=60)),
)
# Raw pieces of a query string, not produced by any encoder.
raw_junk = st.sampled_from(
    ["%", "%Z", "%ZZ", "%00", "%ff%fe", "%E2%82", "&&", "=", "==", "q", "q=%", ";", "+", "%2"]
)


class Viewer:
    """What one app's viewer may use: the valid values of each parameter in their scope."""

    def __init__(self, world: World, app: str):
        self.app = app
        self.url = LIST_URLS[app]
        if app == "dashboard":
            slugs = ["acme"]
            visible = world.of_tenant("acme")
        elif app == "portal":
            slugs = ["acme", "globex"]
            visible = [
                e
                for e in world.of_tenant("acme") + world.of_tenant("globex")
                if e.actor_type in ("human", "agent")
            ]
        else:
            slugs = list(world.tenants)
            visible = list(world.entries)
        self.visible_ids = {e.pk for e in visible}
        self.all_ids = sorted(e.pk for e in world.entries)
        entries = sorted(visible, key=lambda e: e.pk)
        self.valid = {
            "action": st.sampled_from([*ACTIONS, "exported"]),
            "actor": st.sampled_from(sorted({e.actor_id for e in world.entries})),
            "actor_type": st.sampled_from(ACTOR_TYPES),
            "resource_type": st.sampled_from(RESOURCES),
            "tenant": st.sampled_from(slugs),
            "range": st.sampled_from(list(RANGES)),
            "q": st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=200),
            "cursor": st.sampled_from(entries).map(lambda e: encode_cursor(e.created_at, e.pk)),
            "trace": st.sampled_from(entries).map(lambda e: e.trace_id.upper()),
        }

    def valid_query(self, data, *, export: bool) -> list[tuple[str, str]]:
        """Each known parameter at most once, with a value the screen accepts."""
        keys = data.draw(st.sets(st.sampled_from(sorted(self.valid))), label="keys")
        pairs = [(key, data.draw(self.valid[key], label=key)) for key in sorted(keys)]
        if data.draw(st.booleans(), label="dates"):
            days = st.dates(min_value=date(1970, 1, 1), max_value=date(9998, 12, 30))
            first, second = sorted(data.draw(st.lists(days, min_size=2, max_size=2)))
            pairs += [("from", first.isoformat()), ("to", second.isoformat())]
        if export:
            pairs.append(("format", data.draw(st.sampled_from(["csv", "ndjson"]))))
        return pairs

    def hostile_query(self, data) -> str:
        """Known and unknown keys, repeated, with any values, plus raw percent junk."""
        key = st.one_of(st.sampled_from(PARAMS), st.text(chars, max_size=12))
        value = st.one_of(nasty, hostile_cursor, *self.valid.values())
        pairs = data.draw(st.lists(st.tuples(key, value), max_size=12), label="pairs")
        parts = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs]
        parts += data.draw(st.lists(raw_junk, max_size=3), label="raw")
        return "&".join(data.draw(st.permutations(parts), label="order"))


def encode(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def error_message(body: str) -> str:
    match = ERROR_RE.search(body)
    assert match, body[:2000]
    return html.unescape(match.group(1).strip())


def check_response(response, *, endpoint: str, expect_ok: bool) -> None:
    assert response.status_code < 500
    if expect_ok:
        assert response.status_code == 200, response.content[:2000]
    else:
        assert response.status_code in (200, 400), response.status_code
    body = streamed(response) if response.streaming else response.content.decode()
    if response.status_code == 400:
        message = error_message(body)
        assert message and message != DEFAULT_400
        assert "HX-Request" in response["Vary"]
    elif endpoint == "export":
        assert response["Content-Type"].split(";")[0] in ("text/csv", "application/x-ndjson")
        assert response["Content-Disposition"].startswith("attachment; filename=")
        return
    # Whatever was echoed back (the search box, a 400 message) is escaped.
    for payload in XSS:
        if payload.startswith("<") or payload.startswith('"'):
            assert payload not in body
    if endpoint in ("results", "rows"):
        assert "<html" not in body


ENDPOINTS = ("list", "results", "rows", "export")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("app", VIEWERS)
def test_hostile_query_strings_never_5xx(world, client, app, endpoint):
    client.force_login(world.users[VIEWERS[app]])
    viewer = Viewer(world, app)
    path = f"{viewer.url}/export" if endpoint == "export" else viewer.url
    headers = {"HTTP_HX_REQUEST": "true"} if endpoint in ("results", "rows") else {}

    @HYPOTHESIS
    @given(data=st.data())
    def run(data):
        if data.draw(st.booleans(), label="valid"):
            pairs = viewer.valid_query(data, export=endpoint == "export")
            if endpoint == "rows":
                pairs.append(("cursor", data.draw(viewer.valid["cursor"])))
            query, expect_ok = encode(pairs), True
        else:
            query, expect_ok = viewer.hostile_query(data), False
            if endpoint == "rows":
                query += "&cursor=" + data.draw(viewer.valid["cursor"])
        response = client.get(f"{path}?{query}", **headers)
        check_response(response, endpoint=endpoint, expect_ok=expect_ok)

    run()


@pytest.mark.parametrize("app", VIEWERS)
def test_detail_of_any_id_is_200_in_scope_else_404(world, client, app):
    client.force_login(world.users[VIEWERS[app]])
    viewer = Viewer(world, app)
    entry_id = st.one_of(
        st.sampled_from(viewer.all_ids),  # other tenants' entries included
        st.sampled_from(viewer.all_ids).map(lambda i: i + "\n"),
        st.sampled_from(viewer.all_ids).map(str.upper),
        st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True),
        nasty.filter(bool),
    )

    @HYPOTHESIS
    @given(
        entry_id=entry_id,
        query=st.just("") | st.builds(encode, st.lists(st.tuples(junk, nasty))),
        htmx=st.booleans(),
    )
    def run(entry_id, query, htmx):
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        response = client.get(f"{viewer.url}/{quote(entry_id, safe='')}/?{query}", **headers)
        keys = set(QueryDict(query).keys())
        if "/" in entry_id:
            # "%2F" arrives as "/" in the path: no detail URL matches, so the
            # router answers 404 before any parameter is read.
            assert response.status_code == 404, (entry_id, response.status_code)
        elif keys - set(DETAIL_PARAMS):
            # Unknown parameters are a 400 whatever the id: it says nothing about the entry.
            assert response.status_code == 400, (query, response.status_code)
            assert "Unknown query parameter" in error_message(response.content.decode())
        elif response.status_code != 400:
            expected = 200 if entry_id in viewer.visible_ids else 404
            assert response.status_code == expected, (entry_id, response.status_code)
        body = response.content.decode()
        for payload in XSS[:3]:
            assert payload not in body

    run()


@pytest.mark.parametrize("param", [p for p in PARAMS if p != "format"])
@pytest.mark.parametrize("endpoint", ("list", "export"))
def test_nul_bytes_are_a_400_not_a_database_error(world, client, param, endpoint):
    """psycopg refuses NUL in a text parameter: it must never get that far."""
    if endpoint == "export" and param == "since":
        pytest.skip("the live tail's 'since' is a list parameter (unknown to the export)")
    client.force_login(world.users["root"])
    path = LIST_URLS["manage"] + ("/export" if endpoint == "export" else "")
    fmt = "format=csv&" if endpoint == "export" else ""
    response = client.get(f"{path}?{fmt}{param}=ab%00cd")
    assert response.status_code == 400
    assert "control characters" in error_message(response.content.decode())


def test_nul_bytes_elsewhere(world, client):
    client.force_login(world.users["root"])
    url = LIST_URLS["manage"]
    # In an unknown key: a 400 naming it (control characters shown as "?").
    response = client.get(f"{url}?x%00y=1&z=%00")
    assert response.status_code == 400
    message = error_message(response.content.decode())
    assert "Unknown query parameters 'x?y', 'z'" in message
    # In the export format: a 400 naming the formats.
    response = client.get(f"{url}/export?format=csv%00")
    assert response.status_code == 400
    assert "csv or ndjson" in error_message(response.content.decode())
    # In an entry id: no such entry.
    entry = world.entries[0]
    assert client.get(f"{url}/{entry.pk}%00/").status_code == 404
    assert client.get(f"{url}/%00/", HTTP_HX_REQUEST="true").status_code == 404


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's NUL check")
def test_postgresql_would_fail_on_nul_without_the_checks(world):
    """Why the checks matter: unvalidated, a NUL reaches psycopg, which refuses it
    (DataError with psycopg 3, ValueError with psycopg 2): a 500 if it got that far."""
    with pytest.raises((DataError, ValueError), match="NUL"):
        AuditLog.objects.filter(actor_id="a\x00b").exists()


def test_many_repeated_parameters(world, client):
    client.force_login(world.users["rita"])
    url = LIST_URLS["portal"]
    # The last value of a repeated parameter counts.
    response = client.get(f"{url}?{'&'.join(['tenant=initech'] * 50 + ['tenant=acme'])}")
    assert response.status_code == 200
    response = client.get(f"{url}?{'&'.join(['tenant=acme'] * 50 + ['tenant=initech'])}")
    assert response.status_code == 400
    assert "no tenant 'initech'" in error_message(response.content.decode())
    # More fields than Django parses is a 400 too (its SuspiciousOperation), not a 500.
    response = client.get(f"{url}?{'&'.join(f'x{i}=1' for i in range(1200))}")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999999+00:00",
    ],
)
def test_cursor_at_the_ends_of_time(world, client, stamp):
    client.force_login(world.users["root"])
    response = client.get(f"{LIST_URLS['manage']}?cursor={raw_cursor(stamp + '|abc')}")
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "cursor" in error_message(response.content.decode())


def test_generated_cursor_round_trips(world):
    moment = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert raw_cursor(f"{moment.isoformat()}|abc") == encode_cursor(moment, "abc")
