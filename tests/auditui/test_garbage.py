"""A screen's request leaves its page to reference counting, not to the cycle
collector.

Served the way gunicorn serves it (Django's WSGI handler called directly: the test
client keeps a copy of every template context, which would hide what the product
leaves behind). The page's entries, rows and tenants must be freed when the
response is done; what Django's request itself keeps in cycles (its lazy user,
messages storage, htmx details: a few dozen objects) is allowed. On main before
this test, a Manage list page left ~550 objects in cycles, the 50 entries and
rows among them, and the workers collected ~20,000 of them every few dozen
requests (bench/NOTES.md).
"""

from __future__ import annotations

import gc
import io
import sys
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from auditui.rows import HistoryItem, Row
from auditui.views import AuditScreenMixin
from dmobs.models import AuditLog, Tenant
from tests.auditui.helpers import ENTRY_ROW_RE, LIST_URLS

pytestmark = pytest.mark.django_db

# The page's own objects: entries, tenants, rows, timeline items, the view.
PAGE_TYPES = (AuditLog, Tenant, Row, HistoryItem, AuditScreenMixin)


def page_objects(garbage: list) -> list:
    return [o for o in garbage if isinstance(o, PAGE_TYPES)]


# Django's request and what refers back to it (the lazy user's closure, messages
# storages, htmx details, META and headers): about 65 objects, whatever the page.
REQUEST_CYCLE_LIMIT = 120


def serve(handler: WSGIHandler, path: str, cookie: str, headers: dict | None = None) -> str:
    url = urlsplit(path)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "HTTP_COOKIE": cookie,
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    statuses = []
    response = handler(environ, lambda status, _headers, *_: statuses.append(status))
    try:
        body = b"".join(response)
    finally:
        response.close()
    assert statuses == ["200 OK"], (path, statuses, body[:300])
    return body.decode()


def cyclic_garbage(serve_once) -> list:
    """What one request leaves that only the cycle collector would free."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        serve_once()
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


@pytest.fixture
def handler():
    """Django's WSGI handler, as gunicorn calls it; as with the test client, the
    connection is kept open across requests (it holds the test's transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def signed_in(world, client):
    def _cookie(username: str) -> str:
        client.force_login(world.users[username])
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    return _cookie


@pytest.mark.parametrize(
    ("username", "app", "suffix", "headers"),
    [
        ("root", "manage", "?range=all", None),
        ("sarah", "dashboard", "?range=all", None),
        ("rita", "portal", "?range=all", None),
        ("root", "manage", "?range=all", {"HX-Request": "true"}),
    ],
    ids=["manage", "dashboard", "portal", "manage-fragment"],
)
def test_a_list_page_leaves_its_rows_to_reference_counting(
    world, handler, signed_in, username, app, suffix, headers
):
    cookie = signed_in(username)
    path = LIST_URLS[app] + suffix
    body = serve(handler, path, cookie, headers)  # warm: caches filled, imports done
    assert len(ENTRY_ROW_RE.findall(body)) == 50

    garbage = cyclic_garbage(lambda: serve(handler, path, cookie, headers))

    kinds = Counter(type(o).__name__ for o in garbage)
    assert not page_objects(garbage), kinds.most_common(10)
    assert len(garbage) <= REQUEST_CYCLE_LIMIT, kinds.most_common(10)


def test_an_entry_page_and_a_resource_history_leave_no_entry_in_cycles(world, handler, signed_in):
    cookie = signed_in("root")
    entry = world.entries[0]
    detail = f"{LIST_URLS['manage']}/{entry.pk}/"
    history = (
        f"{LIST_URLS['manage']}/history?resource_type={entry.resource_type}"
        f"&resource_id={entry.resource_id}"
    )
    for path in (detail, history):
        assert entry.resource_name in serve(handler, path, cookie)
        garbage = cyclic_garbage(lambda path=path: serve(handler, path, cookie))
        kinds = Counter(type(o).__name__ for o in garbage)
        assert not page_objects(garbage), (path, kinds.most_common(10))
        assert len(garbage) <= REQUEST_CYCLE_LIMIT, (path, kinds.most_common(10))


def test_a_head_request_is_served_like_get(world, signed_in, client):
    """The screens declare ``head`` (so the view holds no bound method of itself: the
    garbage tests above find the view in a cycle otherwise); HEAD still answers."""
    client.force_login(world.users["root"])
    response = client.head(LIST_URLS["manage"])
    assert response.status_code == 200
    assert response.content == b""
