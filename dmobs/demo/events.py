"""Realistic demo data: the demo tenants and people, and the events the platform records.

Used by two commands:

* ``seed_demo`` builds the fixed demo world (``DEMO_TENANTS``, ``DEMO_USERS``)
  and ~4,000 entries over the last 90 days from ``generate_demo_entries()``.
* ``audit_load`` takes a pool of event templates from the same
  ``EventFactory``, so benchmark rows read like real ones.

Everything is driven by seeded ``random.Random`` instances. Content (who did
what, trace ids, before/after) comes from one generator and never depends on
the clock; timestamps come from a second one. So the same seed always gives the
same entries, only shifted to end at "now".

Descriptions always start with the actor's name (``Event.description``), which
lets ``audit_load`` put a template's predicate behind any actor of the right type.

This module is one class of about 800 lines, and that is on purpose: each
method of ``EventFactory`` is one scenario of the platform (a strategy
approved, a skill run, a deliverable published...) and they share the cast,
the random generators and the helpers; split over files, a reader following one
story would jump between modules. The data the scenarios draw from is in
``dmobs.demo.world``; turning events into entries is ``dmobs.demo.dataset``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from dmobs.demo.world import (
    ACTIVITY_KINDS,
    CHANNELS,
    CONTEXT_FILES,
    CRONS,
    FAIL_REASONS,
    FIRST_NAMES,
    GOALS,
    LAST_NAMES,
    MODELS,
    PLAN_PRICES,
    PLAN_SEATS,
    SKILLS,
    STRATEGIES,
    TIME_ZONES,
    TOPICS,
    USER_AGENTS,
    Actor,
    Cast,
    system_actor,
)


# --- Events ------------------------------------------------------------------
@dataclass
class Event:
    actor: Actor
    action: str
    resource_type: str
    resource_id: str
    resource_name: str | None
    predicate: str  # the description without the leading actor name
    before: Any = None
    after: Any = None
    offset: float = 0.0  # seconds after the start of its scenario
    tenant_id: str | None = None

    @property
    def description(self) -> str:
        return f"{self.actor.name} {self.predicate}"


def _hex(rng: random.Random, digits: int) -> str:
    return format(rng.getrandbits(digits * 4), f"0{digits}x")


def new_trace_id(rng: random.Random) -> str:
    """32 lowercase hex digits, never all zero (an invalid OpenTelemetry trace id)."""
    while True:
        value = rng.getrandbits(128)
        if value:
            return format(value, "032x")


class EventFactory:
    """Builds the scenarios the platform records, one list of events per scenario.

    All events of one scenario belong to one request or one agent run, so they
    share a trace id. ``rng`` decides the content only; times are set by the caller.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng

    # helpers
    def _pick(self, seq):
        return self.rng.choice(seq)

    def _rid(self, prefix: str) -> str:
        return f"{prefix}_{_hex(self.rng, 12)}"

    def _reviewer(self, cast: Cast) -> Actor:
        # DM reviewers do most reviews of their tenants; tenant admins the rest.
        if cast.reviewers and self.rng.random() < 0.55:
            return self._pick(cast.reviewers)
        return self._pick(cast.admins or cast.humans)

    def _agent_config(self) -> dict[str, Any]:
        rng = self.rng
        config: dict[str, Any] = {
            "model": self._pick(MODELS),
            "temperature": round(rng.choice((0.2, 0.3, 0.5, 0.7, 0.9)), 1),
            "maxTokens": rng.choice((2000, 4000, 8000)),
            "schedule": {"cron": self._pick(CRONS), "timezone": self._pick(TIME_ZONES)},
            "channels": sorted(rng.sample(CHANNELS, rng.randint(1, 3))),
            "approval": {"required": rng.random() < 0.8, "autoActivateAfterHours": 48},
            "skills": sorted(s for s, _ in rng.sample(SKILLS, rng.randint(2, 4))),
        }
        if rng.random() < 0.4:
            config["integrations"] = {
                "hubspot": {"enabled": True, "portalId": str(rng.randint(10**6, 10**7))},
                "openai": {"api_key": f"demo_key_{_hex(rng, 24)}"},
            }
        return config

    def _change_config(self, config: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        new = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
        for change in rng.sample(
            ("model", "temperature", "schedule", "channels", "approval", "integrations"),
            rng.randint(1, 3),
        ):
            if change == "model":
                new["model"] = self._pick([m for m in MODELS if m != config["model"]])
            elif change == "temperature":
                new["temperature"] = round(min(1.0, config["temperature"] + 0.2), 1)
            elif change == "schedule":
                new["schedule"] = {**config["schedule"], "cron": self._pick(CRONS)}
            elif change == "channels":
                new["channels"] = sorted(set(config["channels"]) ^ {self._pick(CHANNELS)}) or [
                    "blog"
                ]
            elif change == "approval":
                new["approval"] = {
                    **config["approval"],
                    "autoActivateAfterHours": rng.choice((24, 72, 96)),
                }
            else:
                new["integrations"] = {
                    "hubspot": {"enabled": rng.random() < 0.7, "portalId": "4410291"},
                    "openai": {"api_key": f"demo_key_{_hex(rng, 24)}"},
                }
        return new

    # --- scenarios: each returns the events of one request or run ---------------
    def agent_run(self, cast: Cast) -> list[Event]:
        """An agent works on an activity: started -> completed/failed, maybe more."""
        rng = self.rng
        kind, label, role = self._pick(ACTIVITY_KINDS)
        agent = cast.agents.get(role) or self._pick(list(cast.agents.values()))
        topic = self._pick(TOPICS)
        name = f"{label}: {topic}"
        act_id = self._rid("act")
        run_id = self._rid("run")
        skill = self._pick(SKILLS)[0]
        events = [
            Event(
                agent,
                "started",
                "activity",
                act_id,
                name,
                f'started the activity "{name}"',
                before={"status": "queued"},
                after={
                    "status": "running",
                    "runId": run_id,
                    "agentRole": role,
                    "deliverableType": kind,
                    "skill": skill,
                    "model": self._pick(MODELS),
                    "attempt": 1,
                },
            )
        ]
        t = rng.uniform(20, 900)
        if rng.random() < 0.09:
            code, message, retryable = self._pick(FAIL_REASONS)
            events.append(
                Event(
                    agent,
                    "failed",
                    "activity",
                    act_id,
                    name,
                    f'failed the activity "{name}": {message}',
                    before={"status": "running", "runId": run_id},
                    after={
                        "status": "failed",
                        "runId": run_id,
                        "agentRole": role,
                        "deliverableType": kind,
                        "error": {"code": code, "message": message, "retryable": retryable},
                        "durationMs": int(t * 1000),
                    },
                    offset=t,
                )
            )
            return events
        tokens_in, tokens_out = rng.randint(1500, 24000), rng.randint(300, 6000)
        events.append(
            Event(
                agent,
                "completed",
                "activity",
                act_id,
                name,
                f'completed the activity "{name}" and sent it for approval',
                before={"status": "running", "runId": run_id},
                after={
                    "status": "awaiting_approval",
                    "runId": run_id,
                    "agentRole": role,
                    "deliverableType": kind,
                    "durationMs": int(t * 1000),
                    "usage": {
                        "inputTokens": tokens_in,
                        "outputTokens": tokens_out,
                        "costUsd": round(tokens_in * 2.5e-6 + tokens_out * 1e-5, 4),
                    },
                    "outputs": [{"type": kind, "words": rng.randint(120, 1800)}],
                },
                offset=t,
            )
        )
        events.append(self._decision(cast, act_id, name, t))
        if rng.random() < 0.35:
            goal, target = self._pick(GOALS)
            current = rng.randint(int(target * 0.1), int(target * 0.9))
            step = max(1, int(target * rng.uniform(0.005, 0.04)))
            events.append(
                Event(
                    agent,
                    "updated",
                    "goal",
                    f"goal_{hashlib.sha256(goal.encode()).hexdigest()[:12]}",
                    goal,
                    f'updated progress of the goal "{goal}" to {(current + step) * 100 // target}%',
                    before={
                        "current": current,
                        "target": target,
                        "progress": round(current / target, 3),
                    },
                    after={
                        "current": current + step,
                        "target": target,
                        "progress": round((current + step) / target, 3),
                        "source": {"activityId": act_id, "runId": run_id},
                    },
                    offset=t + rng.uniform(1, 5),
                )
            )
        if kind in ("newsletter", "email_sequence", "kpi_report") and rng.random() < 0.5:
            recipients = rng.randint(40, 4800)
            events.append(
                Event(
                    agent,
                    "sent",
                    "deliverable",
                    self._rid("dlv"),
                    name,
                    f'sent "{name}" to {recipients:,} recipients',
                    after={
                        "channel": "email",
                        "recipients": recipients,
                        "provider": "postmark",
                        "activityId": act_id,
                    },
                    offset=t + rng.uniform(5, 60),
                )
            )
        elif kind in ("linkedin_post", "blog_article") and rng.random() < 0.4:
            channel = "linkedin" if kind == "linkedin_post" else "blog"
            events.append(
                Event(
                    agent,
                    "published",
                    "deliverable",
                    self._rid("dlv"),
                    name,
                    f'published "{name}" on {channel}',
                    after={
                        "channel": channel,
                        "url": f"https://{channel}.example/p/{_hex(rng, 8)}",
                        "activityId": act_id,
                    },
                    offset=t + rng.uniform(5, 60),
                )
            )
        return events

    def _decision(self, cast: Cast, act_id: str, name: str, completed: float) -> Event:
        """What became of an activity sent for approval: approved, rejected or auto-activated.

        Decided from the activity id, not from ``rng``, so adding this step kept
        every other generated value as it was.
        """
        h = int(hashlib.sha256(act_id.encode()).hexdigest()[:8], 16)
        people = cast.reviewers + cast.admins or cast.humans
        reviewer = people[h % len(people)]
        before = {"status": "awaiting_approval"}
        wait = 600 + (h >> 8) % (40 * 3600)  # 10 min to ~40 h
        if h % 100 < 8:
            return Event(
                system_actor("system:workflow"),
                "auto_activated",
                "activity",
                act_id,
                name,
                f'auto-activated the activity "{name}" after 48 h without review',
                before=before,
                after={"status": "approved", "activatedBy": "auto_activation"},
                offset=completed + 48 * 3600,
            )
        if h % 100 < 16:
            return Event(
                reviewer,
                "rejected",
                "activity",
                act_id,
                name,
                f'rejected the activity "{name}": Needs a stronger call to action',
                before=before,
                after={"status": "rejected", "reviewer": reviewer.id},
                offset=completed + wait,
            )
        return Event(
            reviewer,
            "approved",
            "activity",
            act_id,
            name,
            f'approved the activity "{name}"',
            before=before,
            after={"status": "approved", "reviewer": reviewer.id},
            offset=completed + wait,
        )

    def review(self, cast: Cast) -> list[Event]:
        """A person approves or rejects an activity, strategy or context file."""
        rng = self.rng
        reviewer = self._reviewer(cast)
        resource_type = rng.choices(("activity", "strategy", "context_file"), (6, 2, 2))[0]
        if resource_type == "activity":
            _, label, _ = self._pick(ACTIVITY_KINDS)
            name, rid = f"{label}: {self._pick(TOPICS)}", self._rid("act")
        elif resource_type == "strategy":
            name, rid = self._pick(STRATEGIES), self._rid("str")
        else:
            name, rid = self._pick(CONTEXT_FILES)[0], self._rid("ctx")
        noun = resource_type.replace("_", " ")
        if rng.random() < 0.8:
            return [
                Event(
                    reviewer,
                    "approved",
                    resource_type,
                    rid,
                    name,
                    f'approved the {noun} "{name}"',
                    before={"status": "awaiting_approval"},
                    after={
                        "status": "approved",
                        "reviewer": reviewer.id,
                        "comment": self._pick(
                            ("", "Looks good", "Ship it", "Approved with minor edits")
                        ),
                    },
                )
            ]
        reason = self._pick(
            (
                "Off-brand tone",
                "Wrong pricing mentioned",
                "Needs a stronger call to action",
                "Outdated figures",
                "Legal has to review the claims first",
            )
        )
        return [
            Event(
                reviewer,
                "rejected",
                resource_type,
                rid,
                name,
                f'rejected the {noun} "{name}": {reason}',
                before={"status": "awaiting_approval"},
                after={"status": "rejected", "reviewer": reviewer.id, "reason": reason},
            )
        ]

    def session(self, cast: Cast, people: list[Actor] | None = None) -> list[Event]:
        rng = self.rng
        person = self._pick(people or cast.humans)
        address = f"{self._pick(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randint(2, 250)}"
        if rng.random() < 0.6:
            return [
                Event(
                    person,
                    "logged_in",
                    "session",
                    person.id,
                    person.name,
                    "signed in",
                    after={
                        "address": address,
                        "userAgent": self._pick(USER_AGENTS),
                        "mfa": rng.random() < 0.7,
                    },
                )
            ]
        return [Event(person, "logged_out", "session", person.id, person.name, "signed out")]

    def agent_toggle(self, cast: Cast) -> list[Event]:
        admin = self._pick(cast.admins or cast.humans)
        agent = self._pick(list(cast.agents.values()))
        enabled = self.rng.random() < 0.55
        action = "enabled" if enabled else "disabled"
        return [
            Event(
                admin,
                action,
                "agent_config",
                agent.id,
                agent.name,
                f"{action} the agent {agent.name}",
                before={"enabled": not enabled},
                after={"enabled": enabled},
            )
        ]

    def agent_config_change(self, cast: Cast) -> list[Event]:
        rng = self.rng
        admin = self._pick(cast.admins or cast.humans)
        agent = self._pick(list(cast.agents.values()))
        roll = rng.random()
        if roll < 0.8:
            before = self._agent_config()
            after = self._change_config(before)
            changed = sorted(k for k in after if after[k] != before.get(k))
            return [
                Event(
                    admin,
                    "updated",
                    "agent_config",
                    agent.id,
                    agent.name,
                    f"updated the configuration of {agent.name} ({', '.join(changed)})",
                    before=before,
                    after=after,
                )
            ]
        if roll < 0.92:
            config = self._agent_config()
            return [
                Event(
                    admin,
                    "created",
                    "agent_config",
                    agent.id,
                    agent.name,
                    f"created the agent {agent.name}",
                    after=config,
                )
            ]
        return [
            Event(
                admin,
                "deleted",
                "agent_config",
                agent.id,
                agent.name,
                f"deleted the agent {agent.name}",
                before=self._agent_config(),
            )
        ]

    def skill_change(self, cast: Cast, actor: Actor | None = None) -> list[Event]:
        rng = self.rng
        actor = actor or self._pick(cast.admins or cast.humans)
        key, name = self._pick(SKILLS)
        rid = f"skill_{key}"
        version = rng.randint(1, 9)
        state = {
            "name": name,
            "version": version,
            "tools": sorted(
                rng.sample(
                    ("web_search", "crm_lookup", "image_generation", "calendar", "analytics"), 2
                )
            ),
            "prompt": f"You write {name.lower()} content in the brand's tone of voice.",
            "inputs": [
                {"name": "topic", "required": True},
                {"name": "audience", "required": False},
            ],
        }
        where = "" if cast.tenant_id else " in the global skill library"
        roll = rng.random()
        if roll < 0.5:
            after = {
                **state,
                "version": version + 1,
                "prompt": state["prompt"] + " Keep it under 200 words.",
            }
            return [
                Event(
                    actor,
                    "updated",
                    "skill",
                    rid,
                    name,
                    f'updated the skill "{name}"{where} to version {version + 1}',
                    before=state,
                    after=after,
                )
            ]
        if roll < 0.85:
            return [
                Event(
                    actor,
                    "created",
                    "skill",
                    rid,
                    name,
                    f'created the skill "{name}"{where}',
                    after={**state, "version": 1},
                )
            ]
        return [
            Event(
                actor,
                "deleted",
                "skill",
                rid,
                name,
                f'deleted the skill "{name}"{where}',
                before=state,
            )
        ]

    def user_change(self, cast: Cast) -> list[Event]:
        rng = self.rng
        admin = self._pick(cast.admins or cast.humans)
        first, last = self._pick(FIRST_NAMES), self._pick(LAST_NAMES)
        full = f"{first} {last}"
        rid = _hex(rng, 24)
        email = f"{first.lower()}.{last.lower()}@{cast.tenant_name.split()[0].lower()}.example"
        roll = rng.random()
        if roll < 0.45:
            return [
                Event(
                    admin,
                    "created",
                    "user",
                    rid,
                    full,
                    f"invited {full} as a member",
                    after={
                        "email": email,
                        "role": "member",
                        "invited": True,
                        "password": f"tmp-{_hex(rng, 10)}",
                    },
                )
            ]
        if roll < 0.8:
            if rng.random() < 0.5:
                return [
                    Event(
                        admin,
                        "updated",
                        "user",
                        rid,
                        full,
                        f"changed the role of {full} from member to admin",
                        before={"role": "member", "permissions": ["read", "review"]},
                        after={"role": "admin", "permissions": ["read", "review", "manage_users"]},
                    )
                ]
            return [
                Event(
                    admin,
                    "updated",
                    "user",
                    rid,
                    full,
                    f"reset the password of {full}",
                    before={"password": f"pbkdf2_sha256$870000${_hex(rng, 22)}"},
                    after={"password": f"pbkdf2_sha256$870000${_hex(rng, 22)}", "mustChange": True},
                )
            ]
        return [
            Event(
                admin,
                "deleted",
                "user",
                rid,
                full,
                f"removed {full} from the tenant",
                before={"email": email, "role": "member", "lastLogin": "2026-08-14"},
            )
        ]

    def strategy_change(self, cast: Cast) -> list[Event]:
        """The strategist proposes or revises a strategy; people edit context files."""
        rng = self.rng
        if rng.random() < 0.6:
            agent = cast.agents.get("strategist") or self._pick(list(cast.agents.values()))
            name = self._pick(STRATEGIES)
            rid = self._rid("str")
            channels = sorted(rng.sample(CHANNELS, 3))
            if rng.random() < 0.5:
                return [
                    Event(
                        agent,
                        "created",
                        "strategy",
                        rid,
                        name,
                        f'proposed the strategy "{name}"',
                        after={
                            "status": "awaiting_approval",
                            "channels": channels,
                            "budgetEur": rng.choice((500, 1500, 4000)),
                            "milestones": [
                                {"week": w, "deliverables": rng.randint(1, 4)} for w in (1, 2, 4)
                            ],
                        },
                    )
                ]
            return [
                Event(
                    agent,
                    "updated",
                    "strategy",
                    rid,
                    name,
                    f'revised the strategy "{name}" after feedback',
                    before={"channels": channels, "budgetEur": 1500, "version": 2},
                    after={"channels": channels[:2], "budgetEur": 2000, "version": 3},
                )
            ]
        person = self._pick(cast.humans)
        fname, mime = self._pick(CONTEXT_FILES)
        rid = self._rid("ctx")
        size = rng.randint(12_000, 4_800_000)
        if rng.random() < 0.7:
            return [
                Event(
                    person,
                    "created",
                    "context_file",
                    rid,
                    fname,
                    f'uploaded the context file "{fname}"',
                    after={"status": "awaiting_approval", "mimeType": mime, "bytes": size},
                )
            ]
        return [
            Event(
                person,
                "updated",
                "context_file",
                rid,
                fname,
                f'replaced the context file "{fname}" with a new version',
                before={"bytes": size, "version": 1},
                after={"bytes": size + rng.randint(-4000, 90_000), "version": 2},
            )
        ]

    def auto_activation(self, cast: Cast) -> list[Event]:
        name = self._pick(STRATEGIES)
        return [
            Event(
                system_actor("system:workflow"),
                "auto_activated",
                "strategy",
                self._rid("str"),
                name,
                f'auto-activated the strategy "{name}" after 48 h without review',
                before={"status": "awaiting_approval"},
                after={
                    "status": "active",
                    "activatedBy": "auto_activation",
                    "policy": {"autoActivateAfterHours": 48},
                },
            )
        ]

    def billing(self, cast: Cast) -> list[Event]:
        rng = self.rng
        billing = system_actor("system:billing")
        price = PLAN_PRICES.get(cast.plan, 99)
        invoice = f"INV-2026-{rng.randint(1000, 9999)}"
        if rng.random() < 0.88:
            return [
                Event(
                    billing,
                    "completed",
                    "payment",
                    self._rid("pay"),
                    invoice,
                    f"charged {price:,}.00 EUR for invoice {invoice}",
                    after={
                        "amount": price * 100,
                        "currency": "EUR",
                        "status": "paid",
                        "invoice": invoice,
                        "card": {
                            "brand": self._pick(("visa", "mastercard", "amex")),
                            "last4": f"{rng.randint(0, 9999):04d}",
                        },
                    },
                )
            ]
        return [
            Event(
                billing,
                "failed",
                "payment",
                self._rid("pay"),
                invoice,
                f"could not charge invoice {invoice}: card declined",
                after={
                    "amount": price * 100,
                    "currency": "EUR",
                    "status": "failed",
                    "invoice": invoice,
                    "declineCode": "insufficient_funds",
                    "nextAttemptInHours": 72,
                },
            )
        ]

    def plan_change(self, cast: Cast, actor: Actor | None = None) -> list[Event]:
        rng = self.rng
        actor = actor or self._pick(cast.admins or cast.humans)
        plans = list(PLAN_PRICES)
        old = cast.plan
        new = self._pick([p for p in plans if p != old])
        direction = "upgraded" if plans.index(new) > plans.index(old) else "downgraded"
        return [
            Event(
                actor,
                "updated",
                "plan",
                cast.tenant_id or _hex(rng, 24),
                f"{cast.tenant_name} plan",
                f"{direction} {cast.tenant_name} from {old.title()} to {new.title()}",
                before={"plan": old, "seats": PLAN_SEATS[old], "priceMonthlyEur": PLAN_PRICES[old]},
                after={
                    "plan": new,
                    "seats": PLAN_SEATS[new],
                    "priceMonthlyEur": PLAN_PRICES[new],
                    "prorated": True,
                },
            )
        ]

    def tenant_settings(self, cast: Cast) -> list[Event]:
        admin = self._pick(cast.admins or cast.humans)
        return [
            Event(
                admin,
                "updated",
                "tenant",
                cast.tenant_id or "",
                cast.tenant_name,
                f"updated the settings of {cast.tenant_name}",
                before={
                    "name": cast.tenant_name,
                    "settings": {
                        "locale": "en-GB",
                        "weekStartsOn": "monday",
                        "notifications": {"email": True, "slack": False},
                    },
                },
                after={
                    "name": cast.tenant_name,
                    "settings": {
                        "locale": "en-GB",
                        "weekStartsOn": "monday",
                        "notifications": {
                            "email": True,
                            "slack": True,
                            "slackChannel": "#marketing",
                        },
                    },
                },
            )
        ]

    def export(self, cast: Cast) -> list[Event]:
        admin = self._pick(cast.admins or cast.humans)
        fmt = self._pick(("csv", "ndjson"))
        return [
            Event(
                admin,
                "exported",
                "audit_log",
                "audit_logs",
                "Audit log",
                f"exported the audit log as {fmt.upper()}",
                after={
                    "format": fmt,
                    "rows": self.rng.randint(50, 3000),
                    "filters": {"range": self._pick(("7d", "30d", "90d"))},
                },
            )
        ]

    def period(self, cast: Cast, month: str) -> list[Event]:
        scheduler = system_actor("system:scheduler")
        return [
            Event(
                scheduler,
                "created",
                "period",
                f"period_{month}",
                month,
                f"created the monthly period {month}",
                after={
                    "month": month,
                    "status": "open",
                    "quotas": {"activities": 200, "seats": PLAN_SEATS.get(cast.plan, 5)},
                },
            )
        ]

    # --- platform-level scenarios (tenant_id None) -----------------------------
    def platform(
        self, staff: list[Actor], tenants: list[Cast], visitors: list[Actor] | None = None
    ) -> list[Event]:
        """Platform-level work: staff sign-ins (and those of reviewers, who belong
        to no tenant), the global skill library, tenants created and deleted."""
        rng = self.rng
        actor = self._pick(staff)
        roll = rng.random()
        if roll < 0.45:
            return self.session(Cast(None, "DM Agency", "enterprise"), staff + (visitors or []))
        if roll < 0.6:
            return self.skill_change(Cast(None, "DM Agency", "enterprise"), actor)
        if roll < 0.7:
            # A plan change made by staff still belongs to the tenant it changes.
            target = self._pick(tenants)
            events = self.plan_change(target, actor)
            for event in events:
                event.tenant_id = target.tenant_id
            return events
        if roll < 0.88:
            company = self._pick(
                (
                    "Umbrella Labs",
                    "Hooli",
                    "Vandelay Industries",
                    "Soylent Foods",
                    "Stark Logistics",
                    "Wayne Media",
                )
            )
            rid = _hex(rng, 24)
            slug = company.split()[0].lower()
            if rng.random() < 0.7:
                return [
                    Event(
                        actor,
                        "created",
                        "tenant",
                        rid,
                        company,
                        f"created the tenant {company} on a 14-day trial",
                        after={
                            "name": company,
                            "slug": slug,
                            "plan": "starter",
                            "trialEndsInDays": 14,
                            "owner": f"admin@{slug}.example",
                        },
                    )
                ]
            return [
                Event(
                    actor,
                    "deleted",
                    "tenant",
                    rid,
                    company,
                    f"deleted the tenant {company} after the trial ended",
                    before={
                        "name": company,
                        "slug": slug,
                        "plan": "starter",
                        "users": rng.randint(1, 6),
                    },
                )
            ]
        return [
            Event(
                actor,
                "exported",
                "audit_log",
                "audit_logs",
                "Audit log",
                "exported the platform audit log as CSV",
                after={
                    "format": "csv",
                    "rows": rng.randint(500, 20000),
                    "filters": {"actor_type": "human", "range": "30d"},
                },
            )
        ]

    # Scenario weights for tenant-level activity.
    TENANT_SCENARIOS = (
        ("agent_run", 34),
        ("review", 18),
        ("session", 16),
        ("strategy_change", 7),
        ("agent_config_change", 5),
        ("agent_toggle", 3),
        ("skill_change", 3),
        ("user_change", 3),
        ("auto_activation", 3),
        ("billing", 2),
        ("plan_change", 0.6),
        ("tenant_settings", 0.6),
        ("export", 1),
    )

    def tenant_scenario(self, cast: Cast) -> list[Event]:
        names, weights = zip(*self.TENANT_SCENARIOS, strict=True)
        scenario = self.rng.choices(names, weights)[0]
        return getattr(self, scenario)(cast)
