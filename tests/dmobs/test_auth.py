"""The sign-in backend (``dmobs.auth.ModelBackend``): Django's, with the signed-in
user read by one plain query; the same user, the same refusals."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dmobs.auth import ModelBackend
from dmobs.models import User
from tests.dmobs.accounts import LIST, PASSWORD, tenant_admin

pytestmark = pytest.mark.django_db


@pytest.fixture
def sarah():
    return tenant_admin(time_zone="Europe/Berlin")


def test_sign_in_records_this_backend():
    assert settings.AUTHENTICATION_BACKENDS[-1] == "dmobs.auth.ModelBackend"
    assert "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS


def test_get_user_reads_what_the_orm_reads(sarah, client):
    client.post("/accounts/login/", {"username": "sarah", "password": PASSWORD})
    sarah.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        user = ModelBackend().get_user(str(sarah.pk))
    assert len(queries) == 1
    expected = User.objects.get(pk=sarah.pk)
    for field in User._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(expected, field.attname), field.name
    assert user.is_active is True and user.last_login.tzinfo is not None
    assert not user._state.adding and user._state.db == expected._state.db
    assert user.get_session_auth_hash() == expected.get_session_auth_hash()


@pytest.mark.parametrize("user_id", ["999999", "not-a-number", ""])
def test_unknown_or_malformed_ids_are_nobody(sarah, user_id):
    assert ModelBackend().get_user(user_id) is None


def test_an_inactive_user_is_signed_out_on_the_next_request(sarah, client):
    client.post("/accounts/login/", {"username": "sarah", "password": PASSWORD})
    assert client.get(LIST).status_code == 200
    User.objects.filter(pk=sarah.pk).update(is_active=False)
    response = client.get(LIST)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_signed_in_request_reads_the_user_once(sarah, client):
    client.post("/accounts/login/", {"username": "sarah", "password": PASSWORD})
    with CaptureQueriesContext(connection) as queries:
        html = client.get(LIST).content.decode()
    reads = [q["sql"] for q in queries if 'FROM "dmobs_user"' in q["sql"]]
    assert len(reads) == 1, reads
    assert "Sarah" in html  # the signed-in name in the header
