"""The demo world: its tenants and people, the platform's vocabulary of
agents, topics, channels and models, and the casts that act in a scenario."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

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
