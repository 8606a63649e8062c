"""Database sessions read with one plain query (``dmobs.sessions``): the same
sign-in, sign-out, expiry and revocation as Django's own database store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.dmobs.accounts import LIST, PASSWORD, tenant_admin

pytestmark = pytest.mark.django_db


@pytest.fixture
def sarah():
    return tenant_admin()


def signed_in(client) -> str:
    response = client.post("/accounts/login/", {"username": "sarah", "password": PASSWORD})
    assert response.status_code == 302
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_the_engine_is_ours():
    assert settings.SESSION_ENGINE == "dmobs.sessions"


def test_a_session_is_read_with_one_query_and_signs_the_user_in(client, sarah):
    key = signed_in(client)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST).status_code == 200
    reads = [q["sql"] for q in queries if "django_session" in q["sql"]]
    assert len(reads) == 1 and key in reads[0], reads


def test_a_session_deleted_in_the_database_signs_out_every_worker(client, sarah):
    """Revocation: a session row removed by another process (sign-out elsewhere,
    an admin) is gone on the very next request; nothing is kept per process."""
    key = signed_in(client)
    other_worker = Client()
    other_worker.cookies[settings.SESSION_COOKIE_NAME] = key
    assert other_worker.get(LIST).status_code == 200
    Session.objects.filter(session_key=key).delete()
    for each in (client, other_worker):
        response = each.get(LIST)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_expired_session_is_not_read(client, sarah):
    key = signed_in(client)
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(LIST)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_password_change_elsewhere_signs_the_session_out(client, sarah):
    signed_in(client)
    sarah.set_password("another-long-password-2")
    sarah.save()
    response = client.get(LIST)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_sign_out_deletes_the_row_and_a_new_sign_in_gets_a_new_key(client, sarah):
    key = signed_in(client)
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get(LIST).status_code == 302
    assert signed_in(client) != key


@pytest.mark.parametrize("cookie", ["", "short", "x" * 40, "'; DROP TABLE django_session; --"])
def test_unknown_or_malformed_keys_are_anonymous(client, sarah, cookie):
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    response = client.get(LIST)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Session.objects.count() == 0
