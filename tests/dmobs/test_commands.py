"""seed_demo and audit_load, run for real against the test database."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from dmobs.demo import pgload, world
from dmobs.ids import is_object_id
from dmobs.management.commands import audit_load
from dmobs.models import AuditFacet, AuditLog, Membership, ReviewerAssignment, Tenant, User

TRACE_RE = re.compile(r"^[0-9a-f]{32}$")


def _seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def _load(*args: str, progress: list[str] | None = None) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_load", *args, stdout=out, stderr=err)
    if progress is not None:
        progress.extend(err.getvalue().splitlines())
    return out.getvalue()


def index_definitions() -> list[tuple[str, str]]:
    """(name, definition) of every index of audit_logs (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_logs'")
        return sorted(cursor.fetchall())


def _counts() -> dict[str, int]:
    return {
        "tenants": Tenant.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "assignments": ReviewerAssignment.objects.count(),
        "entries": AuditLog.objects.count(),
    }


@pytest.fixture
def seeded(db):
    _seed()
    return AuditLog.objects.all()


# --- seed_demo -----------------------------------------------------------------
@pytest.mark.django_db
def test_seed_demo_twice_gives_the_same_counts():
    first_output = _seed()
    first = _counts()
    second_output = _seed()
    assert _counts() == first
    assert first["tenants"] == 3
    assert first["entries"] >= 3500
    assert "already there" in second_output
    assert "entries inserted" in first_output


@pytest.mark.django_db
def test_seed_demo_creates_the_documented_world(seeded):
    tenants = {t.slug: t for t in Tenant.objects.all()}
    assert {"acme", "globex", "initech"} <= set(tenants)
    assert tenants["acme"].name == "Acme Corp"
    # Fixed ref ids keep URLs and tenantIds stable between machines.
    assert tenants["acme"].ref_id == world.DEMO_TENANTS[0].ref_id
    User = get_user_model()
    sarah = User.objects.get(username="sarah")
    assert sarah.first_name == "Sarah"
    assert Membership.objects.get(user=sarah, tenant=tenants["acme"]).role == "admin"
    james = User.objects.get(username="james")
    assert Membership.objects.get(user=james, tenant=tenants["acme"]).role == "member"
    rita = User.objects.get(username="rita")
    assert not rita.memberships.exists()
    assert set(rita.reviewer_assignments.values_list("tenant__slug", flat=True)) == {
        "acme",
        "globex",
    }
    root = User.objects.get(username="root")
    assert root.is_superuser and root.is_super_admin
    # More than the four named people, so the actor filters have something to show.
    assert Membership.objects.filter(tenant=tenants["acme"]).count() >= 3
    assert Membership.objects.filter(tenant=tenants["initech"]).count() >= 2


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["sarah", "james", "rita", "root"])
def test_demo_users_sign_in_with_the_demo_password(seeded, username):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": username, "password": world.DEMO_PASSWORD}
    )
    assert response.status_code == 302, response.content[:500]
    assert client.session.get("_auth_user_id")
    user = get_user_model().objects.get(username=username)
    assert AuditLog.objects.filter(
        actor_id=user.ref_id, action="logged_in", resource_type="session"
    ).exists()


@pytest.mark.django_db
def test_demo_user_with_a_wrong_password_is_refused(seeded):
    client = Client()
    response = client.post("/accounts/login/", {"username": "sarah", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_demo_entries_cover_the_platform_vocabulary(seeded):
    pairs = set(seeded.values_list("action", "resource_type").distinct())
    expected = {
        ("approved", "activity"),
        ("rejected", "activity"),
        ("approved", "strategy"),
        ("rejected", "strategy"),
        ("approved", "context_file"),
        ("rejected", "context_file"),
        ("created", "tenant"),
        ("updated", "tenant"),
        ("deleted", "tenant"),
        ("created", "user"),
        ("updated", "user"),
        ("deleted", "user"),
        ("created", "skill"),
        ("updated", "skill"),
        ("deleted", "skill"),
        ("created", "agent_config"),
        ("updated", "agent_config"),
        ("deleted", "agent_config"),
        ("enabled", "agent_config"),
        ("disabled", "agent_config"),
        ("updated", "plan"),
        ("completed", "payment"),
        ("failed", "payment"),
        ("logged_in", "session"),
        ("logged_out", "session"),
        ("started", "activity"),
        ("completed", "activity"),
        ("failed", "activity"),
        ("updated", "goal"),
        ("published", "deliverable"),
        ("sent", "deliverable"),
        ("auto_activated", "strategy"),
        ("created", "period"),
        ("exported", "audit_log"),
    }
    assert expected <= pairs, sorted(expected - pairs)
    actor_types = Counter(seeded.values_list("actor_type", flat=True))
    assert actor_types["human"] > 500 and actor_types["agent"] > 500 and actor_types["system"] > 0
    assert seeded.filter(tenant_id__isnull=True).count() > 20
    # Every demo tenant has entries, and people of the project act with their ref_id.
    refs = set(Tenant.objects.values_list("ref_id", flat=True))
    assert refs <= set(seeded.values_list("tenant_id", flat=True).distinct())
    user_refs = set(get_user_model().objects.values_list("ref_id", flat=True))
    human_actors = set(seeded.filter(actor_type="human").values_list("actor_id", flat=True))
    assert human_actors <= user_refs
    assert all(a.startswith("agent_") for a in seeded.filter(actor_type="agent")
               .values_list("actor_id", flat=True).distinct())  # fmt: skip


@pytest.mark.django_db
def test_demo_entries_are_well_formed(seeded):
    now = datetime.now(UTC)
    entries = list(seeded.order_by("created_at", "id"))
    assert now - timedelta(days=90) <= entries[0].created_at
    assert entries[-1].created_at <= now
    by_trace: dict[str, set[str]] = {}
    last_seen: dict[str, datetime] = {}
    for entry in entries:
        assert TRACE_RE.match(entry.trace_id), entry.trace_id
        assert is_object_id(entry.id)
        # The id carries created_at's seconds, so ids sort with time.
        assert int(entry.id[:8], 16) == int(entry.created_at.timestamp())
        assert entry.description.startswith(entry.actor_name)
        if entry.action == "updated":
            assert entry.before is not None and entry.after is not None, entry.description
        by_trace.setdefault(entry.trace_id, set()).add(entry.action)
        last_seen[entry.trace_id] = entry.created_at
    # One agent run = one trace: started and completed/failed share a trace id
    # (a run of the last 30 minutes may still be going: it has only started).
    finished = now - timedelta(minutes=30)
    runs = [a for t, a in by_trace.items() if "started" in a and last_seen[t] < finished]
    assert runs and all(actions & {"completed", "failed"} for actions in runs)
    # Nested states and secrets to mask exist.
    updates = seeded.filter(action="updated", resource_type="agent_config")
    assert any(isinstance(e.after.get("schedule"), dict) for e in updates)
    assert any(isinstance(e.after.get("channels"), list) for e in updates)
    text = " ".join(str(e.before) + str(e.after) for e in seeded.exclude(after=None))
    assert "api_key" in text and "password" in text


# --- audit_load ----------------------------------------------------------------
@pytest.mark.django_db
def test_audit_load_inserts_exactly_n_skewed_rows():
    output = _load("--rows", "5000", "--tenants", "20")
    assert "rows/s" in output
    rows = list(
        AuditLog.objects.values_list("id", "tenant_id", "created_at", "trace_id", "actor_type")
    )
    assert len(rows) == 5000
    ids = [r[0] for r in rows]
    assert len(set(ids)) == 5000 and all(is_object_id(i) for i in ids)
    per_tenant = Counter(r[1] for r in rows if r[1] is not None)
    biggest = per_tenant.most_common(1)[0][1]
    assert 0.25 * 5000 <= biggest <= 0.35 * 5000
    assert len(per_tenant) == 20
    platform = sum(1 for r in rows if r[1] is None)
    assert 0.005 * 5000 <= platform <= 0.04 * 5000
    load_refs = set(
        Tenant.objects.filter(slug__startswith="load-").values_list("ref_id", flat=True)
    )
    assert set(per_tenant) == load_refs
    # Ids sort like created_at (to the second, which the id carries).
    by_id = sorted(rows)
    times = [int(r[2].timestamp()) for r in by_id]
    assert times == sorted(times)
    assert all(int(r[0][:8], 16) == int(r[2].timestamp()) for r in rows)
    # Dates spread over two years until now.
    now = datetime.now(UTC)
    assert min(r[2] for r in rows) < now - timedelta(days=500)
    assert max(r[2] for r in rows) <= now
    assert all(TRACE_RE.match(r[3]) for r in rows)
    assert {"human", "agent", "system"} <= {r[4] for r in rows}
    actors = AuditLog.objects.values("actor_id").distinct().count()
    assert actors >= 50


@pytest.mark.django_db
def test_audit_load_rows_read_like_real_entries():
    _load("--rows", "2000", "--tenants", "5")
    sample = list(AuditLog.objects.all()[:500])
    assert all(e.description.startswith(e.actor_name) for e in sample)
    with_state = [e for e in sample if e.after is not None]
    assert with_state and all(isinstance(e.after, dict) for e in with_state)
    assert len({e.action for e in sample}) >= 8


@pytest.mark.django_db
def test_audit_load_is_additive_and_reuses_its_tenants():
    _load("--rows", "300", "--tenants", "3")
    _load("--rows", "200", "--tenants", "3")
    assert AuditLog.objects.count() == 500
    assert Tenant.objects.filter(slug__startswith="load-").count() == 3
    assert AuditLog.objects.values("id").distinct().count() == 500


@pytest.mark.django_db
def test_audit_load_makes_a_reviewer_of_fifty_tenants():
    """``load_reviewer`` reviews the first 50 load tenants (all when fewer): the
    Portal's many-tenant paths in the benchmarks."""
    _load("--rows", "100", "--tenants", "3")
    reviewer = User.objects.get(username="load_reviewer")
    assert not reviewer.has_usable_password()
    assigned = lambda: sorted(  # noqa: E731
        ReviewerAssignment.objects.filter(reviewer=reviewer).values_list("tenant__slug", flat=True)
    )
    assert assigned() == ["load-001", "load-002", "load-003"]
    _load("--rows", "100", "--tenants", "60")
    assert assigned() == [f"load-{i:03d}" for i in range(1, 51)]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="index rebuild is PostgreSQL only")
def test_audit_load_rebuild_restores_every_index():
    before = index_definitions()
    _load("--rows", "1000", "--tenants", "4", "--indexes", "rebuild", "--batch-size", "300")
    assert AuditLog.objects.count() == 1000
    assert index_definitions() == before


def test_pick_slots_follow_the_weights_and_keep_every_pool():
    cum, acc = [], 0.0
    weights = [0.3] + [0.68 / 400] * 400 + [0.02]
    for w in weights:
        acc += w
        cum.append(acc)
    cum[-1] = 1.0
    slots = pgload.pick_slots(cum, 65_536)
    assert len(slots) == 65_536
    counts = Counter(slots)
    assert set(counts) == set(range(len(weights)))  # even a tiny pool can be picked
    assert abs(counts[0] / 65_536 - 0.3) < 0.001
    assert abs(counts[len(weights) - 1] / 65_536 - 0.02) < 0.001
    assert slots == sorted(slots)
    with pytest.raises(CommandError, match="At most 3 tenants"):
        pgload.pick_slots([0.2, 0.4, 0.6, 0.8, 1.0], 4)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="parallel load is PostgreSQL only")
def test_audit_load_over_parallel_connections_writes_every_row_once(monkeypatch):
    """The big-load path: connections of its own, a transaction per slice, the
    secondary indexes dropped first and rebuilt at the end."""

    before = index_definitions()
    monkeypatch.setattr(audit_load, "PARALLEL_MIN_ROWS", 1_000)
    progress: list[str] = []
    output = _load(
        "--rows", "3001", "--tenants", "6", "--batch-size", "400", "--workers", "3",
        "--indexes", "rebuild", progress=progress,
    )  # fmt: skip
    assert "over 3 connections" in output and "indexes rebuilt" in output
    # A line per rebuilt index as it ends, the slow GIN index started first.
    rebuilt = [line.split()[1] for line in progress if " built in " in line]
    secondary = [name for name, d in before if "UNIQUE" not in d]
    assert sorted(rebuilt) == sorted(secondary)
    assert any(f"[{len(secondary)}/{len(secondary)}]" in line for line in progress), progress
    rows = list(AuditLog.objects.values_list("id", "tenant_id", "created_at", "trace_id"))
    assert len(rows) == 3001 and len({r[0] for r in rows}) == 3001
    assert all(int(r[0][:8], 16) == int(r[2].timestamp()) for r in rows)
    assert all(TRACE_RE.match(r[3]) for r in rows)
    assert len({r[1] for r in rows}) == 7  # six tenants and platform-level entries
    assert index_definitions() == before
    # The facet trigger saw every slice.
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT count(*) FROM (SELECT DISTINCT "tenantId", "actorId", action, '
            '"resourceType", "actorType" FROM audit_logs) AS d'
        )
        (distinct,) = cursor.fetchone()
    assert AuditFacet.objects.count() == distinct


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="parallel load is PostgreSQL only")
def test_a_failing_parallel_load_says_why_keeps_whole_slices_and_restores_indexes(monkeypatch):
    """The server refuses slices once 800 rows are in (a trigger raising, as a full
    disk or a lost connection would): a clear error, the committed slices whole,
    every index back."""

    before = index_definitions()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_more() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT count(*) FROM audit_logs) >= 800 THEN
                    RAISE EXCEPTION 'disk full (test)';
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER test_refuse_more BEFORE INSERT ON audit_logs
                FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_more();
            """
        )
    monkeypatch.setattr(audit_load, "PARALLEL_MIN_ROWS", 1_000)
    try:
        with pytest.raises(CommandError, match="Loading failed after .*disk full"):
            _load(
                "--rows", "4000", "--tenants", "3", "--batch-size", "400", "--indexes",
                "rebuild",
            )  # fmt: skip
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_refuse_more ON audit_logs")
            cursor.execute("DROP FUNCTION test_refuse_more()")
    stored = AuditLog.objects.count()
    assert 800 <= stored < 4000 and stored % 400 == 0
    assert index_definitions() == before


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side generation")
def test_audit_load_with_the_same_seed_makes_the_same_entries():
    """Ids differ per run (bytes 5-9), the entries do not: same picks, same order."""
    _load("--rows", "700", "--tenants", "4", "--batch-size", "300", "--seed", "7")
    _load("--rows", "700", "--tenants", "4", "--batch-size", "300", "--seed", "7")
    runs: dict[str, list[tuple]] = {}
    for row in AuditLog.objects.order_by("id").values_list(
        "id", "tenant_id", "actor_id", "action", "resource_id", "description"
    ):
        runs.setdefault(row[0][8:18], []).append(row[1:])
    first, second = runs.values()
    assert len(first) == 700 and first == second


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "0"], "--rows must be a positive number"),
        (["--rows", "-5"], "--rows must be a positive number"),
        (["--rows", "10", "--tenants", "0"], "--tenants must be between"),
        (["--rows", "10", "--batch-size", "0"], "--batch-size must be between"),
        (["--rows", "10", "--days", "0"], "--days must be between"),
    ],
)
def test_audit_load_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        _load(*args)
    assert AuditLog.objects.count() == 0


def test_audit_load_requires_rows():
    with pytest.raises(CommandError, match="--rows"):
        call_command("audit_load")


@pytest.mark.django_db
def test_seed_demo_rejects_bad_arguments():
    with pytest.raises(CommandError, match="--entries must be a positive number"):
        _seed(entries=0)
