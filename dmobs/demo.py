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
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dmobs.audit.api import build_entry
from dmobs.ids import new_object_id

DEMO_PASSWORD = "demo-pass-2026"
DEMO_SEED = 20260101
DEMO_DAYS = 90
DEMO_ENTRIES = 4000


# --- The demo world ----------------------------------------------------------
@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    plan: str
    ref_id: str


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    ref_id: str
    email: str
    # (tenant slug, role) pairs; reviewers list the tenants assigned to them.
    memberships: tuple[tuple[str, str], ...] = ()
    reviews: tuple[str, ...] = ()
    is_superuser: bool = False
    time_zone: str = "UTC"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


# Fixed ref ids keep URLs (and entries' tenantId/actorId) stable between machines.
DEMO_TENANTS = (
    DemoTenant("acme", "Acme Corp", "pro", "65256ea2ba534eb306bef98e"),
    DemoTenant("globex", "Globex", "enterprise", "65f5caca407ba875fa808512"),
    DemoTenant("initech", "Initech", "starter", "6514da819a9eec38e5feb76c"),
)

DEMO_USERS = (
    DemoUser(
        "sarah",
        "Sarah",
        "Chen",
        "65189147b16f239790aee039",
        "sarah@acme.example",
        memberships=(("acme", "admin"),),
        time_zone="Europe/Berlin",
    ),
    DemoUser(
        "james",
        "James",
        "Okafor",
        "65eb247538f9aee98821946b",
        "james@acme.example",
        memberships=(("acme", "member"),),
        time_zone="Europe/London",
    ),
    DemoUser(
        "priya",
        "Priya",
        "Raman",
        "65367c86d77bcfa11de930bb",
        "priya@acme.example",
        memberships=(("acme", "member"),),
        time_zone="Asia/Kolkata",
    ),
    DemoUser(
        "tom",
        "Tom",
        "Becker",
        "652f09b9848ea6f0a085c41b",
        "tom@acme.example",
        memberships=(("acme", "member"),),
        time_zone="Europe/Berlin",
    ),
    DemoUser(
        "elena",
        "Elena",
        "Petrova",
        "65c658f6d836f89ac57cb58e",
        "elena@globex.example",
        memberships=(("globex", "admin"),),
        time_zone="America/New_York",
    ),
    DemoUser(
        "marcus",
        "Marcus",
        "Webb",
        "65b4cef12555316b92294102",
        "marcus@globex.example",
        memberships=(("globex", "member"),),
        time_zone="America/Chicago",
    ),
    DemoUser(
        "aiko",
        "Aiko",
        "Tanaka",
        "657db698a9715dbd977d9c33",
        "aiko@globex.example",
        memberships=(("globex", "member"),),
        time_zone="Asia/Tokyo",
    ),
    DemoUser(
        "bill",
        "Bill",
        "Lumbergh",
        "65d70dff3d958866302fb339",
        "bill@initech.example",
        memberships=(("initech", "admin"),),
        time_zone="America/Chicago",
    ),
    DemoUser(
        "peter",
        "Peter",
        "Gibbons",
        "65fb42f4e0fa7ef609b9682f",
        "peter@initech.example",
        memberships=(("initech", "member"),),
        time_zone="America/Chicago",
    ),
    DemoUser(
        "joanna",
        "Joanna",
        "Park",
        "65d5207269e0ba3925fc84a4",
        "joanna@initech.example",
        memberships=(("initech", "member"),),
        time_zone="America/Los_Angeles",
    ),
    DemoUser(
        "rita",
        "Rita",
        "Alvarez",
        "65c45c30a00b404e396924c6",
        "rita@dmagency.example",
        reviews=("acme", "globex"),
        time_zone="Europe/Madrid",
    ),
    DemoUser(
        "devon",
        "Devon",
        "Hale",
        "6550f8b74c1fbe1d59f778ae",
        "devon@dmagency.example",
        reviews=("initech",),
        time_zone="Europe/Dublin",
    ),
    DemoUser(
        "root",
        "Root",
        "Admin",
        "65fca81573b969b3a135db10",
        "root@dmagency.example",
        is_superuser=True,
    ),
    DemoUser(
        "nadia",
        "Nadia",
        "Ismail",
        "65d0f0622c10809f2684bb8e",
        "nadia@dmagency.example",
        is_superuser=True,
        time_zone="Europe/Amsterdam",
    ),
)

# How busy each demo tenant is (share of the tenant-level scenarios).
DEMO_TENANT_WEIGHTS = {"acme": 0.45, "globex": 0.35, "initech": 0.20}


# --- Vocabulary --------------------------------------------------------------
AGENT_ROLES = (
    ("strategist", "Strategy Agent"),
    ("writer", "Content Writer"),
    ("research", "Research Agent"),
    ("outreach", "Outreach Agent"),
    ("analytics", "Analytics Agent"),
)
SYSTEM_ACTORS = (
    ("system:scheduler", "Scheduler"),
    ("system:billing", "Billing"),
    ("system:workflow", "Workflow engine"),
)
TOPICS = (
    "Q3 product launch",
    "customer story with Northwind",
    "pricing page refresh",
    "AI in field service",
    "spring sale",
    "partner program",
    "year in review",
    "hiring senior engineers",
    "sustainability report",
    "new HubSpot integration",
    "onboarding best practices",
    "trade fair in Hannover",
    "security and compliance",
    "webinar: automating reporting",
)
ACTIVITY_KINDS = (
    ("linkedin_post", "LinkedIn post", "writer"),
    ("blog_article", "Blog article", "writer"),
    ("newsletter", "Newsletter", "writer"),
    ("competitor_scan", "Competitor scan", "research"),
    ("email_sequence", "Cold email sequence", "outreach"),
    ("ad_copy", "Google Ads copy", "writer"),
    ("seo_audit", "SEO audit", "research"),
    ("kpi_report", "Weekly KPI report", "analytics"),
)
STRATEGIES = (
    "Q3 demand generation",
    "LinkedIn thought leadership",
    "Newsletter growth 2026",
    "Webinar series: automation",
    "Partner co-marketing",
    "Re-engage dormant leads",
    "Local SEO for the Berlin office",
    "Product-led onboarding emails",
)
CONTEXT_FILES = (
    ("Brand guidelines v3.pdf", "application/pdf"),
    ("Tone of voice.md", "text/markdown"),
    ("ICP - mid-market SaaS.docx", "application/vnd.openxmlformats"),
    ("Product one-pager 2026.pdf", "application/pdf"),
    ("Competitor matrix.xlsx", "application/vnd.ms-excel"),
    ("Case study - Northwind.pdf", "application/pdf"),
    ("Pricing FAQ.md", "text/markdown"),
    ("Persona - Operations Manager.pdf", "application/pdf"),
)
SKILLS = (
    ("linkedin_post_writer", "LinkedIn post writer"),
    ("seo_blog_outline", "SEO blog outline"),
    ("cold_email_sequence", "Cold email sequence"),
    ("competitor_monitoring", "Competitor monitoring"),
    ("newsletter_digest", "Newsletter digest"),
    ("ad_copy_variants", "Ad copy variants"),
    ("meeting_summary", "Meeting summary"),
    ("landing_page_copy", "Landing page copy"),
)
GOALS = (
    ("Grow newsletter subscribers to 5,000", 5000),
    ("Book 40 demos per month", 40),
    ("Publish 12 blog articles this quarter", 12),
    ("Reach 4% LinkedIn engagement", 400),
    ("Generate 300 MQLs in Q4", 300),
)
MODELS = ("gpt-4o", "gpt-4.1-mini", "claude-sonnet-4", "claude-haiku-4", "mistral-large")
CHANNELS = ("linkedin", "blog", "email", "instagram", "google_ads", "x")
CRONS = ("0 9 * * 1-5", "30 7 * * 1", "0 */4 * * *", "0 14 * * 2,4", "15 8 1 * *")
TIME_ZONES = ("Europe/Berlin", "Europe/London", "America/New_York", "UTC")
FAIL_REASONS = (
    ("rate_limited", "The model provider returned 429 Too Many Requests", True),
    ("timeout", "The activity did not finish within 600 s", True),
    ("integration_error", "LinkedIn API rejected the post: token expired", False),
    ("content_policy", "The draft was blocked by the content policy check", False),
    ("context_missing", "Required context file 'Brand guidelines v3.pdf' is not approved", False),
)
PLAN_PRICES = {"free": 0, "starter": 99, "pro": 499, "enterprise": 1990}
PLAN_SEATS = {"free": 2, "starter": 5, "pro": 20, "enterprise": 100}
USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/17.5",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148 Safari/604.1",
)
FIRST_NAMES = (
    "Anna",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Yara",
    "Zoe",
)
LAST_NAMES = (
    "Adler",
    "Brooks",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Olsen",
    "Patel",
    "Rossi",
    "Schmidt",
    "Torres",
    "Varga",
    "Weber",
    "Young",
    "Zimmer",
)


# --- Actors and casts --------------------------------------------------------
@dataclass(frozen=True)
class Actor:
    type: str  # human, agent or system
    id: str
    name: str


def agent_id(tenant_key: str, role: str) -> str:
    """A stable agent id (``agent_`` + 16 hex) for one agent role of one tenant."""
    digest = hashlib.sha256(f"{tenant_key}/{role}".encode()).hexdigest()
    return f"agent_{digest[:16]}"


@dataclass
class Cast:
    """Who can act in one tenant (or, with ``tenant_id=None``, on the platform)."""

    tenant_id: str | None
    tenant_name: str
    plan: str
    admins: list[Actor] = field(default_factory=list)
    members: list[Actor] = field(default_factory=list)
    reviewers: list[Actor] = field(default_factory=list)
    agents: dict[str, Actor] = field(default_factory=dict)  # role -> agent

    @property
    def humans(self) -> list[Actor]:
        return self.admins + self.members


def system_actor(key: str) -> Actor:
    for actor_id, name in SYSTEM_ACTORS:
        if actor_id == key:
            return Actor("system", actor_id, name)
    raise KeyError(key)


def agents_for(tenant_key: str) -> dict[str, Actor]:
    return {role: Actor("agent", agent_id(tenant_key, role), name) for role, name in AGENT_ROLES}


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
