"""The DEBUG error page never shows a database password (issue 12, finding 7)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import path

from dmobs.security import hide_url_passwords

# Built at run time: the debug page quotes source lines around each frame.
DB_PASSWORD = "-".join(["hunter2", "db", "pass"])
AUDIT_PASSWORD = "-".join(["audit", "s3cret", "pw"])
DB_URL = f"postgres://dmobs_app:{DB_PASSWORD}@db.internal:5432/dmobs"
AUDIT_URL = f"postgresql://audit_app:{AUDIT_PASSWORD}@audit.internal/dmobs?sslmode=require"


def boom(request):
    url = settings.DATABASE_URL  # a local variable on the traceback
    config = {"HOST": "db.internal", "URL": settings.AUDIT_DATABASE_URL}
    raise RuntimeError(f"cannot reach the database ({len(url)}, {len(config)})")


urlpatterns = [path("boom/", boom)]


@pytest.mark.django_db
def test_debug_page_hides_database_url_passwords(client, settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    settings.DATABASE_URL = DB_URL
    settings.AUDIT_DATABASE_URL = AUDIT_URL
    client.raise_request_exception = False
    # runserver puts the process environment into the request's META.
    response = client.get(
        "/boom/", DATABASE_URL=DB_URL, AUDIT_DATABASE_URL=AUDIT_URL, HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 500
    page = response.content.decode()
    assert "RuntimeError" in page and "DATABASE_URL" in page  # the debug page
    for secret in (DB_PASSWORD, AUDIT_PASSWORD):
        assert secret not in page
    assert "postgres://dmobs_app:********************@db.internal:5432/dmobs" in page


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:********************@h:6379/0"),
        (
            "amqp://guest:guest@127.0.0.1:5672//",
            "amqp://guest:********************@127.0.0.1:5672//",
        ),
        ("mongodb://u:p%40ss@h/db", "mongodb://u:********************@h/db"),
        ("sqlite:////tmp/db.sqlite3", "sqlite:////tmp/db.sqlite3"),
        ("http://example.com/a:b@c", "http://example.com/a:b@c"),
        ("see postgres://a:b@h/x and x", "see postgres://a:********************@h/x and x"),
    ],
)
def test_url_passwords_are_hidden(text, shown):
    assert hide_url_passwords(text) == shown
