"""Sign-in protection (django-axes): five failures pause sign-in for 15 minutes,
per username and per client address; every failure and every lockout is an
audit entry, recorded against the real person when the username exists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone

from dmobs.models import AuditLog, Membership, Tenant, User

pytestmark = pytest.mark.django_db

PASSWORD = "pw-long-enough-1"
LOGIN = "/accounts/login/"


@pytest.fixture
def acme():
    return Tenant.objects.create(name="Acme", slug="acme")


@pytest.fixture
def sarah(acme):
    user = User.objects.create_user("sarah", password=PASSWORD, first_name="Sarah")
    Membership.objects.create(user=user, tenant=acme, role="admin")
    return user


@pytest.fixture
def james(acme):
    user = User.objects.create_user("james", password=PASSWORD, first_name="James")
    Membership.objects.create(user=user, tenant=acme, role="member")
    return user


def attempt(client, username: str, password: str = "wrong-guess", address: str = "192.0.2.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_five_failures_pause_sign_in_with_a_clear_page(client, sarah):
    for _ in range(4):
        assert attempt(client, "sarah").status_code == 200
    locked = attempt(client, "sarah")
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert b"0:15:00" in locked.content  # the cool-off is on the page
    assert "Content-Security-Policy" in locked  # the lockout page is a page like others
    # Even the right password is refused during the lockout.
    refused = attempt(client, "sarah", PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


def test_every_failure_and_the_lockout_are_audited_against_the_real_person(client, sarah, acme):
    for _ in range(5):
        attempt(client, "sarah")
    attempt(client, "sarah", PASSWORD)  # refused while locked out

    failed = list(AuditLog.objects.filter(action="failed").order_by("created_at", "id"))
    assert len(failed) == 6
    assert {e.actor_id for e in failed} == {sarah.ref_id}
    assert {e.tenant_id for e in failed} == {acme.ref_id}
    assert [e.after["refused"] for e in failed] == [False] * 5 + [True]
    assert all(e.after["address"] == "192.0.2.1" for e in failed)
    assert "refused" in failed[-1].description
    assert all(PASSWORD not in e.description + str(e.after) for e in failed)

    (lockout,) = AuditLog.objects.filter(action="locked_out")
    assert lockout.tenant_id == acme.ref_id
    assert lockout.resource_type == "session" and lockout.resource_id == "sarah"
    assert lockout.after == {"address": "192.0.2.1", "failures": 5, "userId": sarah.ref_id}


def test_unknown_username_is_a_platform_level_entry(client):
    attempt(client, "mallory")
    entry = AuditLog.objects.get(action="failed")
    assert entry.tenant_id is None
    assert entry.actor_id == "unknown:mallory"


def test_one_person_attacked_from_many_addresses_is_paused(client, sarah, james):
    for n in range(5):
        attempt(client, "sarah", address=f"198.51.100.{n + 1}")
    assert attempt(client, "sarah", PASSWORD, address="203.0.113.7").status_code == 429
    # Someone else signing in from that new address is not affected.
    assert attempt(client, "james", PASSWORD, address="203.0.113.7").status_code == 302


def test_one_address_trying_many_usernames_is_paused(client, sarah, james):
    for name in ("amy", "bob", "carl", "dina", "sarah"):
        attempt(client, name, address="192.0.2.66")
    assert attempt(client, "james", PASSWORD, address="192.0.2.66").status_code == 429
    # james from his own address signs in fine.
    assert attempt(client, "james", PASSWORD, address="192.0.2.67").status_code == 302


def test_a_forged_forwarded_for_header_does_not_dodge_the_address_limit(client, james):
    for n in range(5):
        client.post(
            LOGIN,
            {"username": f"user{n}", "password": "x"},
            REMOTE_ADDR="192.0.2.9",
            HTTP_X_FORWARDED_FOR=f"10.9.9.{n}",
        )
    response = client.post(
        LOGIN,
        {"username": "james", "password": PASSWORD},
        REMOTE_ADDR="192.0.2.9",
        HTTP_X_FORWARDED_FOR="10.9.9.99",
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_counts(client, settings, james):
    settings.DMOBS_TRUSTED_PROXIES = 1
    for n in range(5):
        client.post(
            LOGIN,
            {"username": f"user{n}", "password": "x"},
            REMOTE_ADDR="10.0.0.2",  # the proxy
            HTTP_X_FORWARDED_FOR=f"6.6.6.6, 192.0.2.{n + 10}",  # forged part, then real
        )
    # Five different clients behind one proxy: nobody is locked out by the proxy's address.
    response = client.post(
        LOGIN,
        {"username": "james", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )
    assert response.status_code == 302
    assert {e.after["address"] for e in AuditLog.objects.filter(action="failed")} == {
        f"192.0.2.{n + 10}" for n in range(5)
    }


def test_the_pause_ends_after_the_cool_off(client, sarah):
    for _ in range(5):
        attempt(client, "sarah")
    assert attempt(client, "sarah", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert attempt(client, "sarah", PASSWORD).status_code == 302


def test_attempts_during_the_pause_do_not_extend_it(client, sarah):
    for _ in range(5):
        attempt(client, "sarah")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    attempt(client, "sarah")  # refused, audited, but the clock is not reset
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert attempt(client, "sarah", PASSWORD).status_code == 302


def test_a_successful_sign_in_resets_the_count(client, sarah):
    for _ in range(4):
        attempt(client, "sarah")
    assert attempt(client, "sarah", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        assert attempt(client, "sarah").status_code == 200
    assert not AuditLog.objects.filter(action="locked_out").exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"username": "", "password": ""},
        {"username": "a" * 5000, "password": "x"},
        {"username": "sarah\x00", "password": "x"},
        {"username": ["a", "b"], "password": "x"},
    ],
    ids=["empty", "blank", "very-long", "nul-byte", "list"],
)
def test_hostile_sign_in_posts_never_500(client, sarah, data):
    response = client.post(LOGIN, data, REMOTE_ADDR="192.0.2.50")
    assert response.status_code in (200, 400, 429)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_USER_AGENT": "x" * 5000, "HTTP_ACCEPT": "y" * 5000},
        {"HTTP_X_FORWARDED_FOR": "not-an-address, <script>alert(1)</script>"},
    ],
    ids=["huge-headers", "junk-forwarded-for"],
)
def test_hostile_sign_in_headers_never_500(client, settings, sarah, headers):
    settings.DMOBS_TRUSTED_PROXIES = 1
    for _ in range(6):
        response = client.post(
            LOGIN, {"username": "sarah", "password": "x"}, REMOTE_ADDR="192.0.2.51", **headers
        )
        assert response.status_code in (200, 429)
    assert response.status_code == 429
