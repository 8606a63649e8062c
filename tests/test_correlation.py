"""From one request to its span, its log lines and its audit entry: the same
trace id everywhere, so a person can follow an entry to its trace and logs."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind

from dmobs.models import AuditLog, Membership, Tenant, User
from tests.obs_helpers import captured_json_logs

pytestmark = pytest.mark.django_db

PASSWORD = "demo-pass-2026"


@pytest.fixture
def sarah():
    user = User.objects.create_user("sarah", password=PASSWORD, first_name="Sarah")
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    return user


def _server_span(exporter, name: str):
    spans = [
        s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER and s.name == name
    ]
    assert len(spans) == 1, [s.name for s in exporter.get_finished_spans()]
    return spans[0]


def test_sign_in_request_span_logs_and_audit_entry_share_one_trace(client, sarah, span_exporter):
    with captured_json_logs() as lines:
        response = client.post(
            "/accounts/login/",
            {"username": "sarah", "password": PASSWORD},
            HTTP_X_REQUEST_ID="corr-req-00000001",
        )
    assert response.status_code == 302

    # 1. The request produced a server span with its route.
    span = _server_span(span_exporter, "POST accounts/login/")
    assert span.attributes["http.route"] == "accounts/login/"
    assert span.attributes["http.response.status_code"] == 302
    trace_id = format(span.context.trace_id, "032x")
    span_id = format(span.context.span_id, "016x")

    # 2. The request's log lines carry that span's trace id and span id.
    (access,) = [line for line in lines if line["event"] == "request"]
    assert access["path"] == "/accounts/login/" and access["status"] == 302
    assert (access["traceId"], access["spanId"]) == (trace_id, span_id)
    assert access["requestId"] == "corr-req-00000001"
    request_lines = [line for line in lines if line.get("requestId") == "corr-req-00000001"]
    assert request_lines and all(line["traceId"] == trace_id for line in request_lines)

    # 3. audit_log() inside the request added its event to the request's span
    #    and stored the same trace id.
    entry = AuditLog.objects.get(action="logged_in", actor_id=sarah.ref_id)
    assert entry.trace_id == trace_id
    (event,) = [e for e in span.events if e.name == "audit_log"]
    assert event.attributes["audit.id"] == entry.id
    assert event.attributes["audit.action"] == "logged_in"
    assert event.attributes["audit.tenant_id"] == entry.tenant_id


def test_each_request_gets_its_own_trace(client, sarah, span_exporter):
    client.post("/accounts/login/", {"username": "sarah", "password": "wrong"})
    client.post("/accounts/login/", {"username": "sarah", "password": PASSWORD})
    failed = AuditLog.objects.get(action="failed")
    logged_in = AuditLog.objects.get(action="logged_in")
    assert failed.trace_id != logged_in.trace_id
    traces = {
        format(s.context.trace_id, "032x")
        for s in span_exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER
    }
    assert {failed.trace_id, logged_in.trace_id} <= traces


def test_a_signed_in_request_names_user_and_tenant_on_span_and_logs(client, sarah, span_exporter):
    client.force_login(sarah)
    span_exporter.clear()
    with captured_json_logs() as lines:
        client.get("/")
    span = _server_span(span_exporter, "GET home")  # the root route is named by its view
    tenant_ref = sarah.memberships.get().tenant.ref_id
    assert span.attributes["enduser.id"] == sarah.ref_id
    assert span.attributes["dmobs.tenant_id"] == tenant_ref
    (access,) = [line for line in lines if line["event"] == "request"]
    assert (access["userId"], access["tenantId"]) == (sarah.ref_id, tenant_ref)
    assert access["traceId"] == format(span.context.trace_id, "032x")


def test_the_entry_on_the_screen_links_to_the_request_trace(client, sarah, span_exporter):
    """4. The row of that entry on the screens links to that trace id."""
    client.post("/accounts/login/", {"username": "sarah", "password": PASSWORD})
    span = _server_span(span_exporter, "POST accounts/login/")
    trace_id = format(span.context.trace_id, "032x")
    entry = AuditLog.objects.get(action="logged_in", actor_id=sarah.ref_id)

    page = client.get(f"/dashboard/settings/audit-log/{entry.id}/", HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    html = page.content.decode()
    links = [part for part in html.split('href="')[1:] if trace_id in part.split('"')[0]]
    targets = [part.split('"')[0] for part in links]
    # "Open trace" (Tempo), "Logs of this trace" (Loki) and "Entries of this trace".
    assert any("/explore" in t and "tempo" in t for t in targets), targets
    assert any("/explore" in t and "loki" in t for t in targets), targets
    assert any(f"trace={trace_id}" in t for t in targets), targets


def test_dashboard_request_names_the_active_tenant_of_a_multi_tenant_admin(
    client, sarah, span_exporter
):
    """A user in several tenants has no single tenant of their own: the Dashboard
    names the tenant the request acts in (the one picked for the session)."""
    globex = Tenant.objects.create(name="Globex", slug="globex")
    Membership.objects.create(user=sarah, tenant=globex, role="admin")
    client.force_login(sarah)
    assert (
        client.post("/dashboard/settings/audit-log/tenant", {"tenant": "globex"}).status_code == 302
    )
    span_exporter.clear()
    with captured_json_logs() as lines:
        assert client.get("/dashboard/settings/audit-log").status_code == 200
    (span,) = [s for s in span_exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert span.attributes["dmobs.tenant_id"] == globex.ref_id
    (access,) = [line for line in lines if line["event"] == "request"]
    assert access["tenantId"] == globex.ref_id
