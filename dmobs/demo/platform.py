"""The demo's recent platform activity: activity pipelines, LLM calls and spend caps.

``seed_demo`` adds these to the demo world so the seed dashboards (Activity
Pipeline, LLM Cost, Tenant Health) have data in every panel. Unlike the 90 days
of varied entries of ``dmobs.demo``, this is a dense, coherent picture of the
last 35 days: each demo tenant's agents run activities of the current and the
previous monthly period through the whole lifecycle (created by the scheduler,
started and completed or failed by an agent, approved, rejected or
auto-activated, delivered), each agent run making LLM calls stamped with the
run's trace id, as the platform does. Generated from a fixed seed relative to
"now", so a fresh demo always shows some activities in progress, a HITL
backlog (two of Globex's waiting past the 48 h auto-activation window: the
PipelineOverdue alert) and Initech's spend on course to pass its cap (the
TenantApproachingSpendCap alert).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dmobs.demo.dataset import entry_from_event
from dmobs.demo.events import Event, new_trace_id
from dmobs.demo.world import ACTIVITY_KINDS, DEMO_TENANTS, TOPICS, Cast, system_actor
from dmobs.ids import new_object_id

PLATFORM_SEED = 20261117
PLATFORM_DAYS = 35

# Monthly LLM spend caps in USD: per plan, and one tenant's own (it wins).
PLAN_SPEND_CAPS = {"free": 25, "starter": 150, "pro": 900, "enterprise": 3000}
TENANT_SPEND_CAPS = {"initech": 40}

# Activities a tenant's agents start per day.
ACTIVITIES_PER_DAY = {"acme": 14, "globex": 10, "initech": 6}
# Activities of a tenant left waiting past the auto-activation window (hours).
OVERDUE_WAITS = {"globex": (61.0, 77.5)}

# (provider, model, USD per 1M input tokens, per 1M output tokens)
MODELS = {
    "claude-sonnet-4": ("anthropic", 3.0, 15.0),
    "claude-haiku-4": ("anthropic", 0.8, 4.0),
    "gpt-4o": ("openai", 2.5, 10.0),
    "gpt-4.1-mini": ("openai", 0.4, 1.6),
    "llama3.1:70b": ("ollama", 0.0, 0.0),
}
# The models each agent role calls, with weights.
ROLE_MODELS = {
    "strategist": (("claude-sonnet-4", 3), ("gpt-4o", 1)),
    "writer": (("gpt-4o", 3), ("claude-sonnet-4", 2), ("llama3.1:70b", 1)),
    "research": (("gpt-4.1-mini", 2), ("llama3.1:70b", 2), ("claude-haiku-4", 1)),
    "outreach": (("claude-haiku-4", 3), ("gpt-4.1-mini", 1)),
    "analytics": (("llama3.1:70b", 2), ("gpt-4.1-mini", 1)),
}
FAILURES = (
    ("llm_timeout", "the model did not answer within 120 s"),
    ("rate_limited", "the provider's rate limit was hit 3 times"),
    ("invalid_output", "the draft failed the brand checks twice"),
)
CHANNEL_OF = {
    "linkedin_post": ("published", "linkedin"),
    "blog_article": ("published", "blog"),
    "newsletter": ("sent", "email"),
    "email_sequence": ("sent", "email"),
    "ad_copy": ("published", "google_ads"),
    "competitor_scan": ("published", "portal"),
    "seo_audit": ("published", "portal"),
    "kpi_report": ("sent", "email"),
}


@dataclass
class LlmCallSpec:
    tenant_id: str
    agent_role: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    trace_id: str
    created_at: datetime

    def model_values(self) -> dict[str, Any]:
        return {
            "id": new_object_id(timestamp=self.created_at.timestamp()),
            **self.__dict__,
        }


def _period_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class PipelineFactory:
    def __init__(self, rng: random.Random, now: datetime):
        self.rng = rng
        self.now = now

    def llm_calls(self, cast: Cast, role: str, trace: str, start: datetime, end: datetime):
        rng = self.rng
        models, weights = zip(*ROLE_MODELS[role], strict=True)
        calls = []
        for _ in range(rng.randint(2, 5)):
            model = rng.choices(models, weights)[0]
            provider, price_in, price_out = MODELS[model]
            tokens_in = int(rng.lognormvariate(10.2, 0.6))  # ~27k, long tail
            tokens_out = int(tokens_in * rng.uniform(0.08, 0.35))
            cost = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
            at = start + (end - start) * rng.random()
            calls.append(
                LlmCallSpec(
                    tenant_id=cast.tenant_id,
                    agent_role=role,
                    provider=provider,
                    model=model,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=Decimal(str(round(cost, 6))),
                    trace_id=trace,
                    created_at=at,
                )
            )
        return calls

    def activity(self, cast: Cast, created: datetime, *, wait_hours: float | None = None):
        """(created_at, trace id, event) triples and the LLM calls of one activity."""
        rng = self.rng
        kind, label, role = rng.choice(ACTIVITY_KINDS)
        if rng.random() < 0.15:
            role = "strategist" if kind in ("competitor_scan", "seo_audit") else role
        agent = cast.agents[role]
        name = f"{label}: {rng.choice(TOPICS)}"
        act = f"act_{rng.getrandbits(48):012x}"
        period = _iso(_period_start(created))
        base = {"agentRole": role, "deliverableType": kind, "periodStart": period}
        scheduler = system_actor("system:scheduler")
        planned = new_trace_id(rng)
        events = [
            (
                created,
                planned,
                Event(
                    scheduler,
                    "created",
                    "activity",
                    act,
                    name,
                    f'created the activity "{name}" for {agent.name}',
                    after={"status": "created", **base},
                ),
            )
        ]
        calls: list[LlmCallSpec] = []
        run = new_trace_id(rng)
        started = created + timedelta(minutes=rng.uniform(2, 180))
        events.append(
            (
                started,
                run,
                Event(
                    agent,
                    "started",
                    "activity",
                    act,
                    name,
                    f'started the activity "{name}"',
                    before={"status": "created"},
                    after={"status": "in_progress", **base},
                ),
            )
        )
        ended = started + timedelta(minutes=rng.uniform(1, 25))
        calls += self.llm_calls(cast, role, run, started, ended)
        if rng.random() < 0.09:
            code, message = rng.choice(FAILURES)
            events.append(
                (
                    ended,
                    run,
                    Event(
                        agent,
                        "failed",
                        "activity",
                        act,
                        name,
                        f'failed the activity "{name}": {message}',
                        before={"status": "in_progress"},
                        after={"status": "failed", "error": {"code": code}, **base},
                    ),
                )
            )
            return events, calls
        usage = {
            "inputTokens": sum(c.input_tokens for c in calls),
            "outputTokens": sum(c.output_tokens for c in calls),
            "costUsd": float(sum(c.cost_usd for c in calls)),
        }
        events.append(
            (
                ended,
                run,
                Event(
                    agent,
                    "completed",
                    "activity",
                    act,
                    name,
                    f'completed the activity "{name}" and sent it for approval',
                    before={"status": "in_progress"},
                    after={"status": "awaiting_approval", "usage": usage, **base},
                ),
            )
        )
        wait = wait_hours if wait_hours is not None else rng.expovariate(1 / 9)
        decided = ended + timedelta(hours=wait)
        if wait_hours is not None:
            return events, calls  # still waiting
        review = new_trace_id(rng)
        if wait > 48:
            actor, action, status = system_actor("system:workflow"), "auto_activated", "approved"
            text = f'auto-activated the activity "{name}" after 48 h without review'
            decided = ended + timedelta(hours=48)
        elif rng.random() < 0.1:
            actor = rng.choice(cast.reviewers or cast.admins)
            action, status = "rejected", "rejected"
            text = f'rejected the activity "{name}": Off-brand tone'
        else:
            actor = rng.choice(cast.reviewers or cast.admins)
            action, status = "approved", "approved"
            text = f'approved the activity "{name}"'
        events.append(
            (
                decided,
                review,
                Event(
                    actor,
                    action,
                    "activity",
                    act,
                    name,
                    text,
                    before={"status": "awaiting_approval"},
                    after={"status": status, **base},
                ),
            )
        )
        if status != "approved":
            return events, calls
        verb, channel = CHANNEL_OF[kind]
        delivered = decided + timedelta(minutes=rng.uniform(5, 240))
        events.append(
            (
                delivered,
                run,
                Event(
                    agent,
                    verb,
                    "deliverable",
                    f"dlv_{rng.getrandbits(48):012x}",
                    name,
                    f'{verb} "{name}" on {channel}',
                    after={
                        "status": "completed",
                        "channel": channel,
                        "activityId": act,
                        **base,
                    },
                ),
            )
        )
        return events, calls


def generate_platform_demo(
    *, casts: list[Cast], now: datetime, seed: int = PLATFORM_SEED, days: int = PLATFORM_DAYS
) -> tuple[list[dict[str, Any]], list[LlmCallSpec]]:
    """Audit entries (validated dicts, oldest first) and LLM calls up to ``now``.

    Steps of an activity that would lie after ``now`` are left out: that is
    what makes activities "created" or "in progress" at the time of seeding.
    """
    rng = random.Random(seed)
    factory = PipelineFactory(rng, now)
    slugs = {t.ref_id: t.slug for t in DEMO_TENANTS}
    entries: list[tuple[datetime, str, Event]] = []
    calls: list[LlmCallSpec] = []
    for cast in casts:
        slug = slugs.get(cast.tenant_id, "")
        per_day = ACTIVITIES_PER_DAY.get(slug, 5)
        # Spread over the window, more recent days a bit busier.
        for _ in range(per_day * days):
            age = days * 86400 * (rng.random() ** 1.15)
            created = now - timedelta(seconds=age)
            events, run_calls = factory.activity(cast, created)
            entries += [(t, trace, e) for t, trace, e in events if t <= now]
            calls += [c for c in run_calls if c.created_at <= now]
        for hours in OVERDUE_WAITS.get(slug, ()):
            created = now - timedelta(hours=hours + 1)
            events, run_calls = factory.activity(cast, created, wait_hours=hours)
            entries += [(t, trace, e) for t, trace, e in events if t <= now]
            calls += [c for c in run_calls if c.created_at <= now]
        for event in (e for _, _, e in entries):
            if event.tenant_id is None:
                event.tenant_id = cast.tenant_id
    entries.sort(key=lambda item: item[0])
    rows = [entry_from_event(e, created_at=t, trace_id=trace) for t, trace, e in entries]
    calls.sort(key=lambda c: c.created_at)
    return rows, calls
