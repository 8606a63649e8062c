"""Who sees what: the role x app x endpoint matrix, and tenant isolation."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.views import View

from auditui.scopes import AuditScopeMixin, DashboardScopeMixin
from dmobs.models import AuditLog, Membership
from tests.auditui.helpers import LIST_URLS, entries_by_id, ndjson_records, row_ids

pytestmark = pytest.mark.django_db

USERS = ("sarah", "james", "rita", "root", None)
APPS = ("dashboard", "portal", "manage")
ENDPOINTS = ("list", "fragment", "detail", "detail_fragment", "export")
ALLOWED = {("sarah", "dashboard"), ("rita", "portal"), ("root", "manage")}


def in_scope(world, username: str, app: str, entry: AuditLog) -> bool:
    acme, globex = world.tenants["acme"].ref_id, world.tenants["globex"].ref_id
    if (username, app) == ("sarah", "dashboard"):
        return entry.tenant_id == acme
    if (username, app) == ("rita", "portal"):
        return entry.tenant_id in (acme, globex) and entry.actor_type in ("human", "agent")
    if (username, app) == ("root", "manage"):
        return True
    raise AssertionError(f"{username} has no scope in {app}")


def scope_entries(world, username, app):
    """Entries of the scope as stored now (signing in writes entries too)."""
    return [e for e in AuditLog.objects.all() if in_scope(world, username, app, e)]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("username", USERS)
def test_role_app_endpoint_matrix(world, client, username, app, endpoint):
    """Status codes per role, app and endpoint; a 200 holds only entries of the scope."""
    user = world.users[username] if username else None
    if user:
        client.force_login(user)
    allowed = (username, app) in ALLOWED
    base = LIST_URLS[app]
    # An entry the user may see here (when they may enter), else any entry.
    target = scope_entries(world, username, app)[0] if allowed else world.entries[0]
    hx = {"HTTP_HX_REQUEST": "true"}
    url, headers = {
        "list": (f"{base}?range=all", {}),
        "fragment": (f"{base}?range=all", hx),
        "detail": (f"{base}/{target.pk}/", {}),
        "detail_fragment": (f"{base}/{target.pk}/", hx),
        "export": (f"{base}/export?format=ndjson&range=all", {}),
    }[endpoint]
    expected = scope_entries(world, username, app) if allowed and endpoint == "export" else []

    response = client.get(url, **headers)

    if user is None:
        if headers:
            assert response.status_code == 204
            assert response["HX-Redirect"].startswith("/accounts/login/?next=")
        else:
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/?next=")
        return
    if not allowed:
        assert response.status_code == 403
        assert "You can't open this page" in response.content.decode()
        return

    assert response.status_code == 200
    if endpoint in ("list", "fragment"):
        ids = row_ids(response)
        assert len(ids) == 50
        assert all(in_scope(world, username, app, e) for e in entries_by_id(ids).values())
        assert len(entries_by_id(ids)) == len(ids)
        assert ("<html" in response.content.decode()) == (endpoint == "list")
    elif endpoint in ("detail", "detail_fragment"):
        html = response.content.decode()
        assert target.description in html
        assert ("<html" in html) == (endpoint == "detail")
    else:
        records = ndjson_records(response)
        assert sorted(r["id"] for r in records) == sorted(e.pk for e in expected)


def test_members_see_only_their_own_actions_when_allowed(world, client, settings):
    settings.DMOBS_MEMBERS_SEE_OWN_ACTIONS = True
    james = world.users["james"]
    client.force_login(james)
    response = client.get(f"{LIST_URLS['dashboard']}?range=all")
    assert response.status_code == 200
    ids = row_ids(response)
    assert ids
    assert all(e.actor_id == james.ref_id for e in entries_by_id(ids).values())
    other = next(e for e in world.of_tenant("acme") if e.actor_id != james.ref_id)
    assert client.get(f"{LIST_URLS['dashboard']}/{other.pk}/").status_code == 404


def test_denied_member_is_told_why(world, client):
    client.force_login(world.users["james"])
    response = client.get(LIST_URLS["dashboard"])
    assert response.status_code == 403
    assert "not an admin" in response.content.decode()


@pytest.mark.parametrize(
    "username,app,other_tenant",
    [
        ("sarah", "dashboard", "globex"),
        ("sarah", "dashboard", None),
        ("rita", "portal", "initech"),
        ("rita", "portal", None),
    ],
)
def test_guessing_another_tenants_entry_is_404(world, client, username, app, other_tenant):
    client.force_login(world.users[username])
    foreign = world.of_tenant(other_tenant)[0]
    base = LIST_URLS[app]
    assert client.get(f"{base}/{foreign.pk}/").status_code == 404
    assert client.get(f"{base}/{foreign.pk}/", HTTP_HX_REQUEST="true").status_code == 404
    # Export-like paths: the id as a filter value or a cursor never reaches it.
    export = client.get(f"{base}/export?format=ndjson&range=all&q={foreign.description}")
    assert foreign.pk not in {r["id"] for r in ndjson_records(export)}


def test_portal_hides_system_entries_of_assigned_tenants(world, client):
    client.force_login(world.users["rita"])
    system = next(e for e in world.of_tenant("acme") if e.actor_type == "system")
    assert client.get(f"/portal/audit/{system.pk}/").status_code == 404


@pytest.mark.parametrize("app,username", [("dashboard", "sarah"), ("portal", "rita")])
def test_tenant_filter_narrows_never_widens(world, client, app, username):
    client.force_login(world.users[username])
    forbidden = world.tenants["globex" if app == "dashboard" else "initech"].ref_id
    for extra in ("", "&action=created", "&actor_type=human"):
        response = client.get(f"{LIST_URLS[app]}?range=all&tenant=globex{extra}")
        if app == "dashboard":
            # globex is not in sarah's view: same answer as a tenant that does not exist.
            assert response.status_code == 400
            assert "no tenant &#x27;globex&#x27;" in response.content.decode()
        ids = row_ids(response)
        assert all(e.tenant_id != forbidden for e in entries_by_id(ids).values())
    export = client.get(f"{LIST_URLS[app]}/export?format=ndjson&range=all&tenant=initech")
    if export.status_code == 200:
        assert all(r["tenantId"] != forbidden for r in ndjson_records(export))
    else:
        assert export.status_code == 400
    nowhere = client.get(f"{LIST_URLS[app]}?range=all&tenant=does-not-exist")
    assert nowhere.status_code == 400


def test_portal_tenant_filter_limits_to_that_tenant(world, client):
    client.force_login(world.users["rita"])
    response = client.get("/portal/audit?range=all&tenant=globex")
    ids = row_ids(response)
    assert ids
    globex = world.tenants["globex"].ref_id
    assert all(e.tenant_id == globex for e in entries_by_id(ids).values())


@pytest.mark.parametrize(
    "username,app,allowed_tenants",
    [
        ("sarah", "dashboard", {"acme"}),
        ("rita", "portal", {"acme", "globex"}),
        ("root", "manage", {"acme", "globex", "initech", None}),
    ],
)
def test_filter_choices_name_only_actors_in_scope(world, client, username, app, allowed_tenants):
    client.force_login(world.users[username])
    html = client.get(LIST_URLS[app]).content.decode()
    actor_select = re.search(r'<select id="f-actor" name="actor">(.*?)</select>', html, re.S)
    offered = set(re.findall(r'<option value="([^"]+)"', actor_select.group(1)))
    visible = {e.actor_id for e in scope_entries(world, username, app)}
    assert offered == visible
    outside = {e.actor_name for e in world.entries if not in_scope(world, username, app, e)} - {
        e.actor_name for e in scope_entries(world, username, app)
    }
    for name in outside:
        assert name not in html
    if app != "dashboard":
        tenant_select = re.search(r'<select id="f-tenant" name="tenant">(.*?)</select>', html, re.S)
        slugs = set(re.findall(r'<option value="([^"]+)"', tenant_select.group(1)))
        # Where platform-level entries are in scope, "Platform" is a tenant choice too.
        platform = {"platform"} if None in allowed_tenants else set()
        assert slugs == {s for s in allowed_tenants if s} | platform


def test_landing_lists_the_apps_the_user_may_open(world, client):
    expected = {
        "sarah": ["Dashboard"],
        "james": [],
        "rita": ["DM Portal"],
        "root": ["Manage"],
        "olga": ["Dashboard"],
    }
    for username, labels in expected.items():
        client.force_login(world.users[username])
        html = client.get("/").content.decode()
        shown = re.findall(r'<a class="app-card" href="[^"]+"><strong>([^<]+)</strong>', html)
        assert shown == labels, username
    client.logout()
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_dashboard_tenant_picker_keeps_the_choice_in_the_session(world, client):
    olga = world.users["olga"]
    client.force_login(olga)
    first = client.get("/dashboard/settings/audit-log?range=all")
    assert first.status_code == 200
    acme = world.tenants["acme"].ref_id
    assert {e.tenant_id for e in entries_by_id(row_ids(first)).values()} == {acme}
    assert 'name="tenant" data-autosubmit' in first.content.decode()

    switched = client.post("/dashboard/settings/audit-log/tenant", {"tenant": "initech"})
    assert switched.status_code == 302
    after = client.get("/dashboard/settings/audit-log?range=all")
    initech = world.tenants["initech"].ref_id
    assert {e.tenant_id for e in entries_by_id(row_ids(after)).values()} == {initech}

    # A tenant she is only a member of: the 403 says why.
    client.post("/dashboard/settings/audit-log/tenant", {"tenant": "globex"})
    assert client.get("/dashboard/settings/audit-log").status_code == 403
    # Not her tenant at all: refused, the choice stays.
    refused = client.post("/dashboard/settings/audit-log/tenant", {"tenant": "nope"})
    assert refused.status_code == 400
    assert client.get("/dashboard/settings/audit-log/tenant").status_code == 200


def test_the_switch_on_the_list_posts_with_its_own_token(world):
    """The switch is rendered in the list's Jinja2 content: its form goes to the
    Dashboard's tenant view and carries the CSRF token, which a client that
    enforces CSRF sends back as a browser would."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["olga"])
    html = client.get("/dashboard/settings/audit-log").content.decode()
    form = re.search(
        r'<form method="post" action="([^"]+)" class="tenant-picker">(.*?)</form>', html, re.S
    )
    assert form, html[:2000]
    assert form.group(1) == "/dashboard/settings/audit-log/tenant"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(2)).group(1)
    switched = client.post(form.group(1), {"tenant": "initech", "csrfmiddlewaretoken": token})
    assert switched.status_code == 302
    after = client.get("/dashboard/settings/audit-log?range=all")
    initech = world.tenants["initech"].ref_id
    assert {e.tenant_id for e in entries_by_id(row_ids(after)).values()} == {initech}


def test_tenant_picker_needs_csrf(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["olga"])
    response = client.post("/dashboard/settings/audit-log/tenant", {"tenant": "initech"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "host,path,status",
    [
        ("dash.example.com", "/settings/audit-log", 200),
        ("dash.example.com", "/audit", 404),
        ("dash.example.com", "/dashboard/settings/audit-log", 404),
        ("dash.example.com", "/manage/audit", 200),
        ("portal.example.com", "/audit", 403),
        ("portal.example.com", "/settings/audit-log", 404),
        ("other.example.com", "/dashboard/settings/audit-log", 200),
        ("other.example.com", "/settings/audit-log", 404),
    ],
)
def test_app_hosts_serve_the_exact_paths(world, client, settings, host, path, status):
    settings.ALLOWED_HOSTS = ["dash.example.com", "portal.example.com", "other.example.com"]
    settings.DMOBS_APP_HOSTS = "dash.example.com=dashboard,portal.example.com=portal"
    client.force_login(world.users["sarah"] if "manage" not in path else world.users["root"])
    response = client.get(path, HTTP_HOST=host)
    assert response.status_code == status
    if status == 200 and host == "dash.example.com" and "settings" in path:
        entry = world.of_tenant("acme")[0]
        html = client.get(f"{path}?range=all", HTTP_HOST=host).content.decode()
        # Links stay on the app's own paths.
        assert 'href="/settings/audit-log/' in html
        detail = client.get(f"/settings/audit-log/{entry.pk}/", HTTP_HOST=host)
        assert detail.status_code == 200


def test_landing_links_to_an_apps_own_host(world, client, settings):
    settings.ALLOWED_HOSTS = ["dash.example.com", "portal.example.com"]
    settings.DMOBS_APP_HOSTS = "dash.example.com=dashboard,portal.example.com=portal"
    client.force_login(world.users["rita"])
    html = client.get("/", HTTP_HOST="dash.example.com").content.decode()
    assert 'href="http://portal.example.com/audit"' in html


class _Bare(AuditScopeMixin, View):
    pass


class _Unknown(DashboardScopeMixin, View):
    audit_app = "nope"


def test_mixins_name_the_class_when_misconfigured(world):
    request = RequestFactory().get("/")
    request.user = world.users["sarah"]
    view = _Bare()
    view.setup(request)
    with pytest.raises(ImproperlyConfigured, match="_Bare is missing the audit_app attribute"):
        view.get_audit_app()
    with pytest.raises(ImproperlyConfigured, match=r"_Bare is missing get_audit_queryset\(\)"):
        view.get_audit_queryset()
    with pytest.raises(ImproperlyConfigured, match=r"_Unknown.audit_app is 'nope'"):
        _Unknown().get_audit_app()


def test_dashboard_reads_memberships_afresh_on_every_request(world, client):
    """Memberships come from one plain query per request (``Membership.objects.of_user``),
    never from a copy: removing or demoting one elsewhere counts on the next request."""
    olga = world.users["olga"]
    client.force_login(olga)
    url = "/dashboard/settings/audit-log"
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    reads = [q["sql"] for q in queries if "dmobs_membership" in q["sql"]]
    assert len(reads) == 1, reads
    # The first tenant she administers, by name: Acme.
    Membership.objects.filter(user=olga, tenant=world.tenants["acme"]).update(role="member")
    response = client.get(url)
    assert response.status_code == 200
    assert world.tenants["initech"].name in response.content.decode()
    Membership.objects.filter(user=olga).update(role="member")
    assert client.get(url).status_code == 403
    Membership.objects.filter(user=olga).delete()
    assert client.get(url).status_code == 403


def test_memberships_of_a_user_carry_their_tenants_in_name_order(world):
    olga = world.users["olga"]
    expected = list(
        Membership.objects.filter(user=olga)
        .select_related("tenant")
        .order_by("tenant__name", "tenant__pk")
    )
    got = Membership.objects.of_user(olga)
    assert [(m.pk, m.role, m.tenant_id) for m in got] == [
        (m.pk, m.role, m.tenant_id) for m in expected
    ]
    with CaptureQueriesContext(connection) as queries:
        assert [(m.tenant.name, m.tenant.slug, m.tenant.ref_id) for m in got] == [
            (m.tenant.name, m.tenant.slug, m.tenant.ref_id) for m in expected
        ]
        assert all(m.user_id == olga.pk for m in got)
    assert not queries.captured_queries
    # A field the screens do not show still loads, when read.
    assert got[0].tenant.created_at == expected[0].tenant.created_at
    assert Membership.objects.of_user(world.users["root"]) == []
