"""Responses to signed-in users are never cached by anyone else, and HEAD does
not run an export (issue 12, findings 6 and 7)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dmobs.models import AuditLog
from tests.auditui.helpers import LIST_URLS

pytestmark = pytest.mark.django_db

VIEWERS = {"dashboard": "sarah", "portal": "rita", "manage": "root"}


def _cursor_url(client, url: str) -> str:
    html = client.get(url).content.decode()
    marker = 'class="button" href="'
    assert marker in html, "the world has more than one page"
    return html.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")


def _requests(client, world, app: str) -> list[tuple[str, object]]:
    url = LIST_URLS[app]
    entry = {"dashboard": world.of_tenant("acme"), "portal": world.of_tenant("globex")}.get(
        app, world.of_tenant(None)
    )[0]
    more = _cursor_url(client, f"{url}?range=all")
    htmx = {"HTTP_HX_REQUEST": "true"}
    return [
        ("list", client.get(url)),
        ("results fragment", client.get(f"{url}?action=approved", **htmx)),
        ("rows fragment", client.get(more, **htmx)),
        ("rows page", client.get(more)),
        ("detail page", client.get(f"{url}/{entry.pk}/")),
        ("detail fragment", client.get(f"{url}/{entry.pk}/", **htmx)),
        ("export csv", client.get(f"{url}/export?format=csv&range=24h")),
        ("export ndjson", client.get(f"{url}/export?format=ndjson&range=24h")),
        ("export head", client.head(f"{url}/export?format=csv")),
        ("bad filter 400", client.get(f"{url}?range=forever")),
        ("bad export 400", client.get(f"{url}/export?format=xml")),
        ("missing entry 404", client.get(f"{url}/{'0' * 24}/")),
        ("home", client.get("/")),
    ]


@pytest.mark.parametrize("app", list(LIST_URLS))
def test_every_authenticated_audit_response_is_private_no_store(world, client, app):
    client.force_login(world.users[VIEWERS[app]])
    for name, response in _requests(client, world, app):
        assert response.status_code in (200, 400, 404), (name, response.status_code)
        assert response["Cache-Control"] == "private, no-store", (app, name)
    if app == "dashboard":
        picker = client.get("/dashboard/settings/audit-log/tenant")
        assert picker["Cache-Control"] == "private, no-store"


def test_admin_keeps_its_never_cache_and_is_private(world, client):
    client.force_login(world.users["root"])
    response = client.get("/admin/dmobs/auditlog/")
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= directives


def test_anonymous_responses_are_left_alone(client):
    assert "Cache-Control" not in client.get("/healthz")


@pytest.mark.parametrize("app", list(LIST_URLS))
def test_head_on_an_export_neither_runs_nor_records_it(world, client, app):
    client.force_login(world.users[VIEWERS[app]])
    url = f"{LIST_URLS[app]}/export?format=csv&range=all"
    before = AuditLog.objects.filter(action="exported").count()
    with CaptureQueriesContext(connection) as captured:
        response = client.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    assert AuditLog.objects.filter(action="exported").count() == before
    assert not [q for q in captured.captured_queries if "audit_logs" in q["sql"]]
    # A bad request is still a 400, and GET still exports and records.
    assert client.head(f"{LIST_URLS[app]}/export?format=xml").status_code == 400
    assert client.get(url).status_code == 200
    assert AuditLog.objects.filter(action="exported").count() > before
