"""LLM spend, tokens, exemplars and spend caps, from llm_calls made for each case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from dmobs.collectors.llm import LlmCollector, projected_month
from dmobs.collectors.platform import reset_platform_registry
from dmobs.models import LlmCall, SpendCap, Tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def call(tenant, model, cost, hours_ago, *, provider="openai", role="writer", trace=None, i=0, o=0):
    LlmCall.objects.create(
        tenant_id=tenant,
        agent_role=role,
        provider=provider,
        model=model,
        input_tokens=i,
        output_tokens=o,
        cost_usd=Decimal(cost),
        trace_id=trace,
        created_at=NOW - timedelta(hours=hours_ago),
    )


@pytest.fixture
def world():
    acme = Tenant.objects.create(ref_id="ta", slug="acme", name="Acme", plan="pro")
    tiny = Tenant.objects.create(ref_id="tb", slug="tiny", name="Tiny", plan="starter")
    Tenant.objects.create(ref_id="tc", slug="idle", name="Idle", plan="free")
    SpendCap.objects.create(plan="pro", monthly_usd=500)
    SpendCap.objects.create(plan="starter", monthly_usd=100)
    SpendCap.objects.create(tenant=tiny, monthly_usd=10)  # wins over its plan's
    # Today (NOW is 12:00): two gpt-4o calls of acme's writer, one claude call.
    call("ta", "gpt-4o", "0.50", 1, trace="a" * 32, i=1000, o=200)
    call("ta", "gpt-4o", "1.25", 3, trace="b" * 32, i=3000, o=900)
    call("tb", "claude-sonnet-4", "2.00", 2, provider="anthropic", role="strategist", i=5000)
    # Earlier this month (3 days ago) and last month (25 days ago).
    call("ta", "gpt-4o", "4.00", 72, trace="c" * 32, i=10_000, o=1000)
    call("tb", "claude-sonnet-4", "3.00", 100, provider="anthropic", role="strategist")
    call("ta", "gpt-4o", "99.00", 25 * 24, trace="d" * 32, i=1, o=1)
    return acme, tiny


def families():
    return {f.name: f for f in LlmCollector(now=lambda: NOW).read()}


def test_month_to_date_today_and_tokens(world):
    f = families()
    cost = {
        (s.labels["tenant"], s.labels["model"], s.labels["agent_role"]): s.value
        for s in f["dmobs_llm_cost_usd"].samples
    }
    # Last month's 99.00 is not in this month's counter.
    assert cost == {
        ("ta", "gpt-4o", "writer"): pytest.approx(5.75),
        ("tb", "claude-sonnet-4", "strategist"): pytest.approx(5.00),
    }
    today = {s.labels["tenant"]: s.value for s in f["dmobs_llm_cost_today_usd"].samples}
    assert today == {"ta": pytest.approx(1.75), "tb": pytest.approx(2.00)}
    tokens = {
        (s.labels["model"], s.labels["direction"]): s.value for s in f["dmobs_llm_tokens"].samples
    }
    assert tokens[("gpt-4o", "input")] == 14_000
    assert tokens[("gpt-4o", "output")] == 2_100
    calls = {s.labels["provider"]: s.value for s in f["dmobs_llm_calls"].samples}
    assert calls == {"openai": 3, "anthropic": 2}


def test_the_exemplar_is_todays_most_expensive_call_of_the_series(world):
    f = families()
    (sample,) = [s for s in f["dmobs_llm_cost_usd"].samples if s.labels["tenant"] == "ta"]
    assert sample.exemplar.labels == {"trace_id": "b" * 32}
    assert sample.exemplar.value == 1.25
    assert sample.exemplar.timestamp == (NOW - timedelta(hours=3)).timestamp()
    # A series whose calls today carry no trace id has no exemplar.
    (other,) = [s for s in f["dmobs_llm_cost_usd"].samples if s.labels["tenant"] == "tb"]
    assert other.exemplar is None


def test_spend_caps_tenant_cap_wins_and_projection(world):
    f = families()
    spent = {s.labels["tenant"]: s.value for s in f["dmobs_tenant_spend_month_usd"].samples}
    assert spent == {"ta": pytest.approx(5.75), "tb": pytest.approx(5.0), "tc": 0}
    cap = {s.labels["tenant"]: s.value for s in f["dmobs_tenant_spend_cap_usd"].samples}
    assert cap == {"ta": 500, "tb": 10}  # the free plan has no cap here
    projected = {
        s.labels["tenant"]: s.value for s in f["dmobs_tenant_spend_projected_month_usd"].samples
    }
    # 10.5 days left of November after Nov 20 12:00; tb spent 5.00 in the last 7 days.
    assert projected["tb"] == pytest.approx(5.0 + 5.0 / 7 * 10.5)
    assert projected["tc"] == 0


def test_projection_at_the_end_of_a_month_is_what_was_spent():
    end = datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)
    assert projected_month(12.0, 70.0, end) == pytest.approx(12.0, abs=1e-3)


def test_the_endpoint_speaks_openmetrics_with_exemplars_and_refuses_strangers(world, settings):
    settings.DMOBS_COLLECTOR_CACHE_SECONDS = 0
    reset_platform_registry()
    LlmCall.objects.create(  # a call a minute ago, in real time
        tenant_id="ta",
        agent_role="writer",
        provider="openai",
        model="gpt-4o",
        input_tokens=10,
        output_tokens=10,
        cost_usd=Decimal("0.10"),
        trace_id="e" * 32,
        created_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    try:
        client = Client()
        response = client.get("/metrics/platform", HTTP_ACCEPT="application/openmetrics-text")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/openmetrics-text")
        body = response.content.decode()
        assert body.rstrip().endswith("# EOF")
        assert '# {trace_id="' + "e" * 32 + '"} 0.1' in body
        plain = client.get("/metrics/platform").content.decode()
        assert "dmobs_tenant_spend_cap_usd" in plain and "# {trace_id" not in plain
        stranger = Client(REMOTE_ADDR="203.0.113.9").get("/metrics/platform")
        assert stranger.status_code == 403
    finally:
        reset_platform_registry()


def test_openmetrics_exposition_of_the_collector(world):
    registry = CollectorRegistry()
    registry.register(LlmCollector(now=lambda: NOW))
    text = generate_latest(registry).decode()
    assert (
        'dmobs_llm_cost_usd_total{agent_role="writer",model="gpt-4o",provider="openai",'
        'tenant="ta"} 5.75 # {trace_id="' + "b" * 32 + '"} 1.25'
    ) in text
