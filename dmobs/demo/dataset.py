"""The demo data set: the casts of the demo tenants, their scenarios spread over
the last days, and the audit entries they become (through ``build_entry``, so
demo data passes the checks real entries do)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from dmobs.audit.api import build_entry
from dmobs.demo.events import Event, EventFactory, new_trace_id
from dmobs.demo.world import (
    DEMO_DAYS,
    DEMO_ENTRIES,
    DEMO_SEED,
    DEMO_TENANT_WEIGHTS,
    DEMO_TENANTS,
    DEMO_USERS,
    Actor,
    Cast,
    agents_for,
)
from dmobs.ids import new_object_id


# --- The demo data set -------------------------------------------------------
def demo_casts(
    tenant_refs: dict[str, str] | None = None, user_refs: dict[str, str] | None = None
) -> tuple[list[Cast], list[Actor]]:
    """The casts of the three demo tenants and the platform staff, from DEMO_*.

    ``tenant_refs``/``user_refs`` override the fixed ref ids with what the
    database holds (a demo user created by hand keeps its own ref id).
    """
    tenant_refs = tenant_refs or {}
    user_refs = user_refs or {}
    casts: dict[str, Cast] = {}
    for t in DEMO_TENANTS:
        casts[t.slug] = Cast(
            tenant_refs.get(t.slug, t.ref_id), t.name, t.plan, agents=agents_for(t.slug)
        )
    staff = []
    for u in DEMO_USERS:
        actor = Actor("human", user_refs.get(u.username, u.ref_id), u.full_name)
        for slug, role in u.memberships:
            (casts[slug].admins if role == "admin" else casts[slug].members).append(actor)
        for slug in u.reviews:
            casts[slug].reviewers.append(actor)
        if u.is_superuser:
            staff.append(actor)
    return list(casts.values()), staff


def _month_starts(start: datetime, end: datetime) -> list[datetime]:
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = []
    while month <= end:
        if month >= start:
            out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def _scenario_start(
    clock: random.Random, now: datetime, days: int, span: float, human: bool
) -> datetime:
    """When a scenario starts: humans mostly on weekdays in office hours (UTC)."""
    window = days * 86400 - span - 120
    for _ in range(4):
        start = now - timedelta(seconds=120 + span + clock.random() * window)
        if not human:
            return start
        office = 7 <= start.hour < 19 and start.weekday() < 5
        if office or clock.random() < 0.15:
            return start
    return start


def generate_demo_events(
    *,
    casts: list[Cast],
    staff: list[Actor],
    now: datetime,
    days: int = DEMO_DAYS,
    target: int = DEMO_ENTRIES,
    seed: int = DEMO_SEED,
) -> list[tuple[datetime, str, Event]]:
    """(created_at, trace id, event) triples, oldest first.

    Content comes from ``random.Random(seed)``; times from a second generator,
    so the content (and trace ids) never depend on the date of the run.
    """
    rng = random.Random(seed)
    clock = random.Random(seed + 1)
    factory = EventFactory(rng)
    weights = [DEMO_TENANT_WEIGHTS.get(_slug_of(c), 1 / len(casts)) for c in casts]
    reviewers = list({a.id: a for c in casts for a in c.reviewers}.values())
    out: list[tuple[datetime, str, Event]] = []
    count = 0
    while count < target:
        if rng.random() < 0.05:
            events = factory.platform(staff, casts, reviewers)
            tenant_id = None
        else:
            cast = rng.choices(casts, weights)[0]
            events = factory.tenant_scenario(cast)
            tenant_id = cast.tenant_id
        trace_id = new_trace_id(rng)
        span = max(e.offset for e in events)
        start = _scenario_start(clock, now, days, span, events[0].actor.type == "human")
        for event in events:
            if event.tenant_id is None:
                event.tenant_id = tenant_id
            out.append((start + timedelta(seconds=event.offset), trace_id, event))
        count += len(events)
    # The scheduler opens a monthly period for every tenant on the 1st.
    for month_start in _month_starts(now - timedelta(days=days), now):
        trace_id = new_trace_id(rng)
        for i, cast in enumerate(casts):
            (event,) = factory.period(cast, month_start.strftime("%Y-%m"))
            event.tenant_id = cast.tenant_id
            out.append((month_start + timedelta(seconds=5 + i), trace_id, event))
    out.sort(key=lambda item: item[0])
    return out


def _slug_of(cast: Cast) -> str:
    for t in DEMO_TENANTS:
        if t.name == cast.tenant_name:
            return t.slug
    return ""


def entry_from_event(event: Event, *, created_at: datetime, trace_id: str) -> dict[str, Any]:
    """A validated entry dict (the fields of ``AuditLog``) for one event.

    Goes through ``build_entry`` so demo data passes the checks real entries do;
    the id carries ``created_at`` so ids sort like the entries' times.
    """
    entry = build_entry(
        tenant_id=event.tenant_id,
        actor_type=event.actor.type,
        actor_id=event.actor.id,
        actor_name=event.actor.name,
        action=event.action,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        resource_name=event.resource_name,
        description=event.description,
        before=event.before,
        after=event.after,
        trace_id=trace_id,
    )
    entry["created_at"] = created_at
    entry["id"] = new_object_id(timestamp=created_at.timestamp())
    return entry


def generate_demo_entries(
    *,
    casts: list[Cast],
    staff: list[Actor],
    now: datetime | None = None,
    days: int = DEMO_DAYS,
    target: int = DEMO_ENTRIES,
    seed: int = DEMO_SEED,
) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    return [
        entry_from_event(event, created_at=created_at, trace_id=trace_id)
        for created_at, trace_id, event in generate_demo_events(
            casts=casts, staff=staff, now=now, days=days, target=target, seed=seed
        )
    ]
