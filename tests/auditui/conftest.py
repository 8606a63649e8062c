"""A small world for the screens: tenants acme, globex and initech; sarah (admin
of acme), james (member of acme), rita (reviewer of acme and globex), root
(super admin), olga (admin of acme and initech, member of globex); and a few
hundred entries of every actor type, tenant-less platform entries included."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from dmobs.ids import new_object_id
from dmobs.models import AuditLog, Membership, ReviewerAssignment, Tenant, User

PASSWORD = "test-pass-2026"
ACTIONS = ("created", "updated", "approved", "rejected", "deleted", "published", "sent")
RESOURCES = ("strategy", "activity", "context_file", "skill", "goal", "deliverable")
NAMES = {
    "strategy": ("Q3 growth strategy", "Spring launch plan", "Retention playbook"),
    "activity": ("Weekly newsletter", "LinkedIn carousel", "Webinar follow-up"),
    "context_file": ("Brand voice guide", "Pricing FAQ", "Competitor notes"),
    "skill": ("SEO briefs", "Cold outreach", "Ad copy"),
    "goal": ("500 qualified leads", "Churn under 3%", "NPS 45"),
    "deliverable": ("Landing page copy", "Case study draft", "Email sequence"),
}
VERBS = {
    "created": "created",
    "updated": "updated",
    "approved": "approved",
    "rejected": "rejected",
    "deleted": "deleted",
    "published": "published",
    "sent": "sent",
}


@dataclass
class World:
    tenants: dict[str, Tenant]
    users: dict[str, User]
    entries: list[AuditLog] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def of_tenant(self, slug: str | None) -> list[AuditLog]:
        ref = self.tenants[slug].ref_id if slug else None
        return [e for e in self.entries if e.tenant_id == ref]


def make_entry(
    *, tenant: Tenant | None, actor: tuple[str, str, str], created_at: datetime, rng, **extra
) -> AuditLog:
    actor_type, actor_id, actor_name = actor
    action = extra.pop("action", rng.choice(ACTIONS))
    resource_type = extra.pop("resource_type", rng.choice(RESOURCES))
    resource_id = f"{resource_type[:2]}_{rng.randrange(1000)}"
    resource_name = rng.choice(NAMES.get(resource_type, ("Item",)))
    label = resource_type.replace("_", " ")
    fields = dict(
        id=new_object_id(created_at.timestamp()),
        tenant_id=tenant.ref_id if tenant else None,
        actor_type=actor_type,
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        description=f"{actor_name} {VERBS.get(action, action)} the {label} “{resource_name}”",
        before={
            "status": "draft",
            "title": resource_name,
            "owner": {"name": actor_name, "tags": ["q3", "draft"]},
            "settings": {"channel": "email", "api_key": "sk-test-123"},
        },
        after={
            "status": action,
            "title": resource_name,
            "owner": {"name": actor_name, "tags": ["q3", "review", "priority"]},
            "settings": {"channel": "linkedin", "api_key": "sk-test-456"},
        },
        trace_id=f"{rng.getrandbits(128):032x}",
        created_at=created_at,
    )
    fields.update(extra)
    return AuditLog(**fields)


def bulk_platform_entries(count: int, *, seed: int) -> list[AuditLog]:
    """Insert ``count`` platform-level system entries, one second apart from now back."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return AuditLog.objects.bulk_create(
        [
            make_entry(
                tenant=None,
                actor=("system", "bulk", "Bulk"),
                created_at=now - timedelta(seconds=i),
                rng=rng,
            )
            for i in range(count)
        ]
    )


def build_world() -> World:
    rng = random.Random(20260101)
    tenants = {
        slug: Tenant.objects.create(slug=slug, name=name, plan=plan)
        for slug, name, plan in (
            ("acme", "Acme", "pro"),
            ("globex", "Globex", "enterprise"),
            ("initech", "Initech", "starter"),
        )
    }

    def user(username, first, last, **kwargs):
        u = User.objects.create_user(
            username=username, password=PASSWORD, first_name=first, last_name=last, **kwargs
        )
        return u

    users = {
        "sarah": user("sarah", "Sarah", "Admin", time_zone="Europe/Berlin"),
        "james": user("james", "James", "Member", time_zone="America/New_York"),
        "rita": user("rita", "Rita", "Reviewer"),
        "root": user("root", "Root", "Super", is_superuser=True, is_staff=True),
        "olga": user("olga", "Olga", "Multi"),
    }
    Membership.objects.create(user=users["sarah"], tenant=tenants["acme"], role="admin")
    Membership.objects.create(user=users["james"], tenant=tenants["acme"], role="member")
    Membership.objects.create(user=users["olga"], tenant=tenants["acme"], role="admin")
    Membership.objects.create(user=users["olga"], tenant=tenants["initech"], role="admin")
    Membership.objects.create(user=users["olga"], tenant=tenants["globex"], role="member")
    ReviewerAssignment.objects.create(reviewer=users["rita"], tenant=tenants["acme"])
    ReviewerAssignment.objects.create(reviewer=users["rita"], tenant=tenants["globex"])

    def person(u):
        return ("human", u.ref_id, u.get_full_name())

    actors = {
        "acme": [
            person(users["sarah"]),
            person(users["james"]),
            ("agent", "agent-acme-writer", "Acme Writer Agent"),
            ("system", "system-acme-billing", "Acme Billing System"),
        ],
        "globex": [
            ("human", "u-gloria", "Gloria Globex"),
            ("agent", "agent-globex", "Globex Planner Agent"),
            ("system", "system-globex", "Globex Sync System"),
        ],
        "initech": [("human", "u-ivan", "Ivan Initech"), person(users["olga"])],
        None: [person(users["root"]), ("system", "system-cron", "Platform Cron")],
    }
    counts = {"acme": 130, "globex": 90, "initech": 50, None: 40}
    now = datetime.now(UTC).replace(microsecond=0)
    entries: list[AuditLog] = []
    for slug, n in counts.items():
        tenant = tenants[slug] if slug else None
        for i in range(n):
            # Spread over 100 days, newest first; every 7th entry shares its
            # timestamp with the one before (keyset ties are broken by id).
            age = timedelta(minutes=rng.randrange(0, 100 * 24 * 60))
            created = now - age
            if i % 7 == 1 and entries:
                created = entries[-1].created_at
            entries.append(
                make_entry(
                    tenant=tenant, actor=rng.choice(actors[slug]), created_at=created, rng=rng
                )
            )
    AuditLog.objects.bulk_create(entries)
    return World(tenants=tenants, users=users, entries=entries, now=now)


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def login(client):
    def _login(user: User | None):
        if user is not None:
            client.force_login(user)
        return client

    return _login
