"""`make bench`: our audit screens against the Django admin on the same data.

1. Creates (or reuses) a PostgreSQL database on 127.0.0.1:5432 and loads
   BENCH_ROWS entries with `audit_load` (default 1,000,000).
2. Serves the app with gunicorn (the admin peer mounted at /bench-admin/).
3. Measures server round trips (median and p95 over BENCH_REQUESTS requests
   after warm-up) for each case, ours and the admin's, in the same run.
4. Measures a streamed CSV export (rows/s, peak RSS of the worker) and the
   writer (time in audit_log() on the caller, entries/s reaching PostgreSQL).
5. Prints one table and writes bench/RESULTS.md.

Environment: BENCH_ROWS, BENCH_DB (default dmobs_bench_<N>, one database per
size so 1M and 10M runs can be repeated; the name must start with dmobs_bench),
BENCH_REQUESTS (100), BENCH_WARMUP (5), BENCH_ADMIN_REQUESTS (20), BENCH_PORT
(8765), BENCH_WRITER_ENTRIES (100000), BENCH_SKIP (comma list of: admin,
lists, export, exports, writer, profile; vacuum: no VACUUM of a reused database),
BENCH_LOAD_ONLY=true (load the database and stop).
"exports" are issue 12's: the super admin's CSV of every entry and the Portal
CSV of audit_load's 50-tenant reviewer, each checked complete against a direct
query, then both at once while the tenant admin's list page is measured.

bench/RESULTS.md keeps one section per N: a run replaces its own N's section
and leaves the others.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))


def _size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


DB = os.environ.get("BENCH_DB", f"dmobs_bench_{_size_label(ROWS)}")
if not DB.startswith("dmobs_bench"):
    raise SystemExit(f"BENCH_DB must start with dmobs_bench, got {DB!r}")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "100"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "5"))
ADMIN_REQUESTS = int(os.environ.get("BENCH_ADMIN_REQUESTS", "20"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
WRITER_ENTRIES = int(os.environ.get("BENCH_WRITER_ENTRIES", "100000"))
SKIP = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
PG = "postgres://postgres@127.0.0.1:5432"
DEEP_TARGET = 1_000_000

ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "")
    if os.environ.get("BENCH_WRITER_ONLY") == "true"
    else f"{PG}/{DB}",
    "SECRET_KEY": "bench-only-secret-key-0f6e2d9c8b7a6f5e4d3c2b1a",
    "DEBUG": "false",
    "DMOBS_HTTPS": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "LOG_LEVEL": "WARNING",
    "AUDIT_SPOOL_DIR": str(ROOT / "var" / "bench-spool"),
}
os.environ.update(ENV)
os.environ.pop("AUDIT_DATABASE_URL", None)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone()
        if not exists:
            say(f"creating database {DB}")
            conn.execute(f'CREATE DATABASE "{DB}"')


def setup_django():
    import django

    django.setup()


LOAD_NOTE = ROOT / "var" / "bench-load.txt"


def load_rows() -> tuple[int, str]:
    """Entries in the bench database, loading what is missing; and the audit_load
    summary of the load that made them (kept in var/ so a reused database still
    reports it)."""
    import io

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_logs")
        (have,) = cursor.fetchone()
    note_file = LOAD_NOTE.with_name(f"bench-load-{DB}.txt")
    if have < ROWS:
        say(f"loading {ROWS - have:,} entries (have {have:,}, want {ROWS:,})")
        out = io.StringIO()
        load_avg = os.getloadavg()
        started = time.perf_counter()
        call_command("audit_load", rows=ROWS - have, stdout=out)
        elapsed = time.perf_counter() - started
        summary = out.getvalue().strip().splitlines()[-1]
        note = (
            f"`audit_load --rows {ROWS - have}`: {summary} — {elapsed:.0f} s including "
            f"tenants and VACUUM ANALYZE; load average at start {load_avg[0]:.1f}"
        )
        say(note)
        note_file.parent.mkdir(parents=True, exist_ok=True)
        note_file.write_text(note + "\n")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audit_logs")
            (have,) = cursor.fetchone()
    elif "vacuum" in SKIP:
        # A database shared with another run that must not be written to.
        say(f"reusing {have:,} entries in {DB} (not vacuumed: BENCH_SKIP has vacuum)")
    else:
        say(f"reusing {have:,} entries in {DB}")
        # As autovacuum would have by now (and audit_load does after a load): the
        # visibility map lets the capped counts' index-only scans skip the heap.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) audit_logs")
    note = note_file.read_text().strip() if note_file.exists() else "(not recorded)"
    return have, note


@dataclass
class Fixture:
    root_cookie: str
    admin_cookie: str
    tenant_ref: str
    tenant_slug: str
    actor_id: str
    action: str
    word: str
    entry_id: str
    deep_cursor: str | None
    deep_offset: int
    export_from: str
    history_resource: str
    tail_cursor: str
    reviewer_cookie: str = ""
    reviewer_refs: tuple = ()


def _session_cookie(user) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "dmobs.auth.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def prepare(total: int) -> Fixture:
    from django.db import connection

    from dmobs.models import Membership, Tenant, User

    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "tenantId", count(*) FROM audit_logs WHERE "tenantId" IS NOT NULL '
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        )
        tenant_ref, tenant_rows = cursor.fetchone()
        cursor.execute(
            'SELECT "actorId", action, count(*) FROM audit_logs WHERE "tenantId" = %s '
            "AND \"createdAt\" > now() - interval '30 days' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1",
            [tenant_ref],
        )
        actor_id, action, _n = cursor.fetchone()
        cursor.execute(
            'SELECT id FROM audit_logs WHERE "tenantId" = %s ORDER BY "createdAt" DESC, id DESC '
            "LIMIT 1 OFFSET 500",
            [tenant_ref],
        )
        (entry_id,) = cursor.fetchone()
        deep_offset = min(DEEP_TARGET, total // 2)
        cursor.execute(
            'SELECT "createdAt", id FROM audit_logs ORDER BY "createdAt" DESC, id DESC '
            "LIMIT 1 OFFSET %s",
            [deep_offset - 1],
        )
        deep_created, deep_id = cursor.fetchone()
        cursor.execute(
            'SELECT "createdAt" FROM audit_logs ORDER BY "createdAt" DESC, id DESC '
            "LIMIT 1 OFFSET %s",
            [min(1_000_000, total) - 1],
        )
        (export_from,) = cursor.fetchone()
    say(f"biggest tenant {tenant_ref}: {tenant_rows:,} entries")
    tenant = Tenant.objects.filter(ref_id=tenant_ref).first()
    if tenant is None:
        tenant = Tenant.objects.create(ref_id=tenant_ref, name="Bench tenant", slug="bench-big")
    root, _ = User.objects.get_or_create(
        username="bench_root", defaults={"is_superuser": True, "is_staff": True}
    )
    admin, _ = User.objects.get_or_create(username="bench_admin")
    Membership.objects.get_or_create(user=admin, tenant=tenant, defaults={"role": "admin"})
    # audit_load's reviewer of 50 tenants (made again here for a database loaded
    # before it existed).
    from dmobs.demo.load import LOAD_REVIEWER
    from dmobs.management.commands.audit_load import Command

    Command()._reviewer(list(Tenant.objects.filter(slug__startswith="load-").order_by("slug")))
    reviewer = User.objects.get(username=LOAD_REVIEWER)
    reviewer_refs = tuple(
        Tenant.objects.filter(reviewer_assignments__reviewer=reviewer).values_list(
            "ref_id", flat=True
        )
    )
    say(f"reviewer {LOAD_REVIEWER}: {len(reviewer_refs)} tenants")
    try:
        from auditui.query import encode_cursor

        deep_cursor = encode_cursor(deep_created, deep_id)
    except (ImportError, TypeError):
        deep_cursor = None
    ensure_history_resource(tenant_ref)
    with connection.cursor() as cursor:
        # The live tail's empty poll starts from the newest entry of the tenant.
        cursor.execute(
            'SELECT "createdAt", id FROM audit_logs WHERE "tenantId" = %s '
            'ORDER BY "createdAt" DESC, id DESC LIMIT 1',
            [tenant_ref],
        )
        newest_created, newest_id = cursor.fetchone()
    from auditui.query import encode_cursor

    tail_cursor = encode_cursor(newest_created, newest_id)
    return Fixture(
        root_cookie=_session_cookie(root),
        admin_cookie=_session_cookie(admin),
        tenant_ref=tenant_ref,
        tenant_slug=tenant.slug,
        actor_id=actor_id,
        action=action,
        word="approved",
        entry_id=entry_id,
        deep_cursor=deep_cursor,
        deep_offset=deep_offset,
        export_from=export_from.date().isoformat(),
        history_resource=HISTORY_RESOURCE_ID,
        tail_cursor=tail_cursor,
        reviewer_cookie=_session_cookie(reviewer),
        reviewer_refs=reviewer_refs,
    )


HISTORY_RESOURCE_ID = "bench-history-1000"
HISTORY_ENTRIES = 1000


def ensure_history_resource(tenant_ref: str) -> None:
    """One agent config of the biggest tenant with 1,000 entries (its history is a
    case), spread over the last 300 days among the loaded entries. Inserted once."""
    import random

    from dmobs.ids import new_object_id
    from dmobs.models import AuditLog

    have = AuditLog.objects.filter(
        resource_type="agent_config", resource_id=HISTORY_RESOURCE_ID
    ).count()
    if have >= HISTORY_ENTRIES:
        return
    say(f"adding {HISTORY_ENTRIES - have} entries of agent_config {HISTORY_RESOURCE_ID}")
    rng = random.Random(16)
    now = datetime.now(UTC)
    entries = []
    for i in range(have, HISTORY_ENTRIES):
        at = now - timedelta(days=300) + timedelta(minutes=i * 431 + rng.randrange(60))
        entries.append(
            AuditLog(
                id=new_object_id(at.timestamp()),
                tenant_id=tenant_ref,
                actor_type="agent",
                actor_id="agent-bench-tuner",
                actor_name="Tuner Agent",
                action="updated",
                resource_type="agent_config",
                resource_id=HISTORY_RESOURCE_ID,
                resource_name="Planner agent config",
                description=f"Tuner Agent updated the agent config (step {i})",
                before={"temperature": i / 1000, "model": f"m-{i}", "maxTokens": 1000 + i},
                after={"temperature": (i + 1) / 1000, "model": f"m-{i + 1}", "maxTokens": 1001 + i},
                trace_id=f"{rng.getrandbits(128):032x}",
                created_at=at,
            )
        )
    AuditLog.objects.bulk_create(entries)


class Server:
    def __init__(self, workers: int = 2):
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def __enter__(self):
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        cmd = [
            gunicorn,
            "dmobs.wsgi:application",
            "-c",
            str(ROOT / "dmobs" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(self.workers),
            "--timeout",
            "600",
            # Several runs on one machine must not share gunicorn's control socket.
            "--no-control-socket",
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy())
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                status, _body, _ = request("/healthz")
                if status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not come up on 127.0.0.1:{PORT}")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def __exit__(self, *exc):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


_conn: http.client.HTTPConnection | None = None


def request(path: str, cookie: str = "", headers: dict | None = None):
    global _conn
    if _conn is None:
        _conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    all_headers = {"Cookie": cookie, **(headers or {})}
    try:
        _conn.request("GET", path, headers=all_headers)
        response = _conn.getresponse()
    except (http.client.HTTPException, OSError):
        _conn.close()
        _conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
        _conn.request("GET", path, headers=all_headers)
        response = _conn.getresponse()
    body = response.read()
    return response.status, body, response


def measure(
    path: str, cookie: str, headers: dict | None = None, n: int = REQUESTS, warmup: int = WARMUP
):
    for _ in range(warmup):
        status, body, _ = request(path, cookie, headers)
        # 204: the live tail's poll that found nothing.
        if status not in (200, 204):
            raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
    times = []
    for _ in range(n):
        start = time.perf_counter()
        request(path, cookie, headers)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
    return statistics.median(times), p95


def list_cases(fx: Fixture) -> list[tuple[str, str, str, dict | None, str | None]]:
    """(case, our path, cookie, headers, admin path) per case."""
    since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")
    dash = "/dashboard/settings/audit-log"
    deep = f"/manage/audit?{urlencode({'range': 'all', 'cursor': fx.deep_cursor or ''})}"
    admin = "/bench-admin/dmobs/auditlog/"
    deep_page = fx.deep_offset // 50 + 1
    return [
        ("Manage list, first page (last 30 days)", "/manage/audit", fx.root_cookie, None, admin),
        (
            "Manage list, first page (all time)",
            "/manage/audit?range=all",
            fx.root_cookie,
            None,
            admin,
        ),
        (
            "Dashboard, biggest tenant, first page",
            dash,
            fx.admin_cookie,
            None,
            f"{admin}?{urlencode({'tenant_id': fx.tenant_ref})}",
        ),
        (
            f"Deep page (~{fx.deep_offset:,} entries in)",
            deep,
            fx.root_cookie,
            None,
            f"{admin}?p={deep_page}",
        ),
        (
            "Filters: action + actor + 30 days",
            f"{dash}?{urlencode({'action': fx.action, 'actor': fx.actor_id, 'range': '30d'})}",
            fx.admin_cookie,
            None,
            f"{admin}?"
            + urlencode(
                {
                    "tenant_id": fx.tenant_ref,
                    "action__exact": fx.action,
                    "actor_id": fx.actor_id,
                    "created_at__gte": since,
                }
            ),
        ),
        (
            # Issue 16: the same filters typed into the search box (auditui.search
            # rewrites them onto the dropdowns' parameters): must cost what they cost.
            "Qualifier search: action: + actor: + 30 days",
            f"{dash}?"
            + urlencode({"q": f'action:{fx.action} actor:"{fx.actor_id}"', "range": "30d"}),
            fx.admin_cookie,
            None,
            None,
        ),
        (
            f"Free text q={fx.word!r}, biggest tenant",
            f"{dash}?{urlencode({'q': fx.word, 'range': 'all'})}",
            fx.admin_cookie,
            None,
            f"{admin}?{urlencode({'tenant_id': fx.tenant_ref, 'q': fx.word})}",
        ),
        (
            "Row-detail fragment (htmx)",
            f"/manage/audit/{fx.entry_id}/",
            fx.root_cookie,
            {"HX-Request": "true"},
            None,
        ),
        (
            "Resource history (1,000 entries), first page",
            f"{dash}/history?"
            + urlencode({"resource_type": "agent_config", "resource_id": fx.history_resource}),
            fx.admin_cookie,
            None,
            None,
        ),
        (
            "Live-tail poll, nothing new (htmx)",
            f"{dash}?{urlencode({'since': fx.tail_cursor})}",
            fx.admin_cookie,
            {"HX-Request": "true"},
            None,
        ),
    ]


def bench_lists(fx: Fixture) -> list[tuple[str, tuple, tuple | None]]:
    results = []
    with Server(workers=2):
        for case, ours, cookie, headers, peer in list_cases(fx):
            if "cursor=&" in ours or ours.endswith("cursor="):
                say(f"skipping {case}: auditui.query.encode_cursor is missing")
                continue
            say(f"measuring: {case}")
            our_numbers = measure(ours, cookie, headers)
            peer_numbers = None
            if peer and "admin" not in SKIP:
                say(f"measuring the admin: {case}")
                peer_numbers = measure(peer, fx.root_cookie, n=ADMIN_REQUESTS, warmup=1)
            results.append((case, our_numbers, peer_numbers))
    return results


def bench_export(fx: Fixture) -> dict:
    query = urlencode({"format": "csv", "range": "all", "from": fx.export_from})
    path = f"/manage/audit/export?{query}"
    with Server(workers=1) as server:
        (pid,) = server.worker_pids()
        rss_before = _rss_kb(pid, "VmRSS")
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)
        start = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": fx.root_cookie})
        response = conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"export answered {response.status}: {response.read()[:300]!r}")
        rows = -1  # header line
        size = 0
        while chunk := response.read(1 << 20):
            rows += chunk.count(b"\n")
            size += len(chunk)
        elapsed = time.perf_counter() - start
        peak = _rss_kb(pid, "VmHWM")
    return {
        "rows": rows,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed if elapsed else 0,
        "mb": size / 1e6,
        "peak_rss_mb": peak / 1024,
        "rss_before_mb": rss_before / 1024,
    }


# --- Issue 12: complete exports at every size, and nobody held back meanwhile -------

EXPORT_RATE_TARGET = 100_000
EXPORT_RSS_TARGET_MB = 150
CONCURRENT_P95_TARGET_MS = 50.0
# Every CSV record of the chunked export starts with its quoted id after a CRLF.
_RECORD_ID = re.compile(rb'\r\n"([0-9a-f]{24})","')


def export_paths(fx: Fixture) -> dict[str, tuple[str, str]]:
    query = urlencode({"format": "csv", "range": "all"})
    return {
        "Manage, all entries (super admin)": (f"/manage/audit/export?{query}", fx.root_cookie),
        f"Portal, reviewer of {len(fx.reviewer_refs)} tenants": (
            f"/portal/audit/export?{query}",
            fx.reviewer_cookie,
        ),
    }


def direct_export_digest(case: str, fx: Fixture) -> tuple[int, str]:
    """(rows, md5 of the ids joined by newlines, newest first) of the export's
    scope, straight from PostgreSQL."""
    from django.db import connection

    where, params = "TRUE", []
    if case.startswith("Portal"):
        where = "\"tenantId\" = ANY(%s) AND \"actorType\" IN ('human', 'agent')"
        params = [list(fx.reviewer_refs)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), md5(coalesce(string_agg(id, E'\\n' "
            f"ORDER BY \"createdAt\" DESC, id DESC), '')) FROM audit_logs WHERE {where}",
            params,
        )
        return cursor.fetchone()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pids() -> list[int]:
    """PostgreSQL backends connected to the bench database (same machine)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {DB} ".encode() in title:
                pids.append(int(entry.name))
    return pids


class BackendCpu(threading.Thread):
    """CPU used by the bench database's PostgreSQL backends while it runs: each
    backend sampled every 0.2 s (an export's read-ahead connection ends with the
    export, so its last 0.2 s at most are missed)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        for pid in _backend_pids():
            cpu = _cpu_seconds(pid)
            self.first.setdefault(pid, cpu)
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()

    def __enter__(self):
        self.sample()
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join()
        self.sample()

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


class ExportDownload(threading.Thread):
    """One streamed CSV export: rows, an md5 of the ids in order, time."""

    def __init__(self, path: str, cookie: str):
        super().__init__(daemon=True)
        self.path, self.cookie = path, cookie
        self.rows = 0
        self.bytes = 0
        self.digest = hashlib.md5()
        self.seconds = 0.0
        self.status = None
        self.streaming = threading.Event()
        self.client_cpu = 0.0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)
        start = time.perf_counter()
        cpu_start = time.thread_time()
        conn.request("GET", self.path, headers={"Cookie": self.cookie})
        response = conn.getresponse()
        self.status = response.status
        tail = b""
        first = True
        while chunk := response.read(1 << 20):
            self.streaming.set()
            self.bytes += len(chunk)
            data = tail + chunk
            end = 0
            for match in _RECORD_ID.finditer(data):
                self.digest.update((b"" if first else b"\n") + match[1])
                first = False
                self.rows += 1
                end = match.end()
            tail = data[max(end, len(data) - 40) :]
        self.seconds = time.perf_counter() - start
        self.client_cpu = time.thread_time() - cpu_start
        self.streaming.set()
        conn.close()


def _peak_rss_mb(server: Server) -> float:
    return max(_rss_kb(pid, "VmHWM") for pid in server.worker_pids()) / 1024


def bench_complete_exports(fx: Fixture) -> list[dict]:
    """Each export alone on a fresh server: rate, peak RSS, and complete
    byte for byte (row count and id checksum against a direct query)."""
    results = []
    for case, (path, cookie) in export_paths(fx).items():
        expected_rows, expected_md5 = direct_export_digest(case, fx)
        say(f"export: {case} ({expected_rows:,} entries)")
        with Server(workers=2) as server:
            workers = server.worker_pids()
            worker_cpu = sum(_cpu_seconds(pid) for pid in workers)
            download = ExportDownload(path, cookie)
            with BackendCpu() as backends:
                download.run()
            worker_cpu = sum(_cpu_seconds(pid) for pid in workers) - worker_cpu
            peak = _peak_rss_mb(server)
        per_row = 1e6 / max(download.rows, 1)
        cpu = {
            "server_us": worker_cpu * per_row,
            "pg_us": backends.seconds * per_row,
            "client_us": download.client_cpu * per_row,
        }
        results.append(
            {
                "case": case,
                "rows": download.rows,
                "expected": expected_rows,
                "complete": download.rows == expected_rows
                and download.digest.hexdigest() == expected_md5,
                "seconds": download.seconds,
                "rate": download.rows / download.seconds if download.seconds else 0,
                "mb": download.bytes / 1e6,
                "peak_rss_mb": peak,
                **cpu,
                "idle_rate": idle_rate(cpu),
            }
        )
        say(f"  {download.rows:,} rows in {download.seconds:.1f} s: {results[-1]}")
    return results


def idle_rate(cpu: dict) -> float:
    """Rows/s the CPU time per row allows on 2 otherwise idle cores: the server's
    Python and PostgreSQL each run on one core at a time (a pipeline), and all of
    it, the client's reading included, shares the two."""
    pg, server, client = cpu["pg_us"], cpu["server_us"], cpu["client_us"]
    bound = max(pg, server, (pg + server + client) / 2)
    return 1e6 / bound if bound else 0.0


def bench_list_during_exports(fx: Fixture) -> dict:
    """The tenant admin's list page while the two exports above stream at once,
    and on the same server just before (the peer: what the machine gives it alone)."""
    dash = "/dashboard/settings/audit-log"
    with Server(workers=2):
        for _ in range(WARMUP):
            request(dash, fx.admin_cookie)
        alone = []
        for _ in range(REQUESTS):
            start = time.perf_counter()
            request(dash, fx.admin_cookie)
            alone.append((time.perf_counter() - start) * 1000)
        downloads = [ExportDownload(path, cookie) for path, cookie in export_paths(fx).values()]
        for download in downloads:
            download.start()
        for download in downloads:
            download.streaming.wait(120)
        times = []
        while len(times) < REQUESTS and all(d.is_alive() for d in downloads):
            start = time.perf_counter()
            status, _body, _ = request(dash, fx.admin_cookie)
            if status != 200:
                raise SystemExit(f"list page answered {status} during the exports")
            times.append((time.perf_counter() - start) * 1000)
        both_running = all(d.is_alive() for d in downloads)
        for download in downloads:
            download.join()
    times.sort()
    alone.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)] if times else 0.0
    return {
        "alone_median": statistics.median(alone),
        "alone_p95": alone[min(len(alone) - 1, int(round(0.95 * len(alone))) - 1)],
        "requests": len(times),
        "median": statistics.median(times) if times else 0.0,
        "p95": p95,
        "exports_outlasted": both_running,
        "export_rows": [d.rows for d in downloads],
        "statuses": [d.status for d in downloads],
    }


def _rss_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


WRITER_DB = "dmobs_bench_writer"


def bench_writer_isolated() -> dict:
    """``bench_writer()`` in a child process on a fresh database of its own
    (same migrations, so the same indexes and triggers): the entries it writes
    must not grow the list benchmark's table from run to run."""
    import json

    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{WRITER_DB}"')
        conn.execute(f'CREATE DATABASE "{WRITER_DB}"')
    env = {**os.environ, "DATABASE_URL": f"{PG}/{WRITER_DB}", "BENCH_WRITER_ONLY": "true"}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_writer() -> dict:
    """Time audit_log() on the caller and the sustained rate into PostgreSQL."""
    from opentelemetry import trace

    from dmobs.audit import audit_log
    from dmobs.audit import writer as writer_module
    from dmobs.models import AuditLog
    from dmobs.observability.tracing import configure_tracing

    configure_tracing()
    tracer = trace.get_tracer("bench")
    writer = writer_module.build_writer()
    writer_module.set_writer(writer)
    before = AuditLog.objects.filter(tenant_id="bench-writer").count()
    samples = []
    start = time.perf_counter()
    with tracer.start_as_current_span("bench-request"):
        for i in range(WRITER_ENTRIES):
            t0 = time.perf_counter_ns()
            audit_log(
                tenant_id="bench-writer",
                actor_type="agent",
                actor_id="agent-bench",
                actor_name="Bench agent",
                action="completed",
                resource_type="activity",
                resource_id=f"act-{i}",
                description=f"Bench agent completed activity {i}",
                after={"step": i, "status": "done"},
            )
            samples.append(time.perf_counter_ns() - t0)
    submitted = time.perf_counter() - start
    writer.flush(timeout=600)
    total = time.perf_counter() - start
    stored = AuditLog.objects.filter(tenant_id="bench-writer").count() - before
    samples.sort()
    return {
        "entries": WRITER_ENTRIES,
        "stored": stored,
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "submit_s": submitted,
        "total_s": total,
        "rate": stored / total if total else 0,
    }


def profile_requests(fx: Fixture) -> list[str]:
    """pyinstrument profiles of one request per measured screen, in this process
    (Django test client, same database), written to bench/profiles/: they show
    where a request's time goes when a target is missed."""
    from django.test import Client
    from pyinstrument import Profiler

    from dmobs.models import User

    out = ROOT / "bench" / "profiles"
    out.mkdir(exist_ok=True)
    label = _size_label(ROWS)
    cases = {
        "manage-first-page": ("bench_root", "/manage/audit?range=all", {}),
        "dashboard-q": ("bench_admin", f"/dashboard/settings/audit-log?q={fx.word}&range=all", {}),
        "detail-fragment": (
            "bench_root",
            f"/manage/audit/{fx.entry_id}/",
            {"HTTP_HX_REQUEST": "true"},
        ),
    }
    written = []
    for name, (username, path, headers) in cases.items():
        client = Client()
        client.force_login(User.objects.get(username=username))
        client.get(path, **headers)  # warm
        profiler = Profiler(interval=0.0005)
        with profiler:
            for _ in range(5):
                client.get(path, **headers)
        target = out / f"{label}-{name}.txt"
        target.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        written.append(str(target.relative_to(ROOT)))
    # The CSV export, first 200,000 rows.
    from auditui import export
    from dmobs.models import AuditLog

    profiler = Profiler(interval=0.001)
    with profiler:
        rows = 0
        for chunk in export.csv_chunks(AuditLog.objects.order_by("-created_at", "-id")):
            rows += chunk.count(b"\n")
            if rows >= 200_000:
                break
    target = out / f"{label}-export.txt"
    target.write_text(profiler.output_text(unicode=False, color=False))
    written.append(str(target.relative_to(ROOT)))
    return written


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {pg}"
    )


# Every list case: issue 16's p95 <= 20 ms, and issue 4's <= 30 ms (both shown).
LIST_TARGET_MS = 20.0
P95_TARGET_MS = 30.0
SEARCH_TARGET_MS = 150.0
DETAIL_TARGET_MS = 15.0
HISTORY_TARGET_MS = 50.0
TAIL_TARGET_MS = 10.0
RATIO_TARGET = 100.0


def _verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"**missed** ({miss})"


def report(
    total: int,
    load_note: str,
    loads: tuple,
    lists,
    export,
    writer,
    profiles,
    exports12=(None, None),
) -> str:
    """This run's section of RESULTS.md (one per N)."""
    before, after = loads
    lines = [
        f"## N = {ROWS:,} entries",
        "",
        f"- Entries in audit_logs: {total:,} (the load plus what earlier runs' exports recorded)",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Load average (1/5/15 min) at start {before[0]:.2f} / {before[1]:.2f} / "
        f"{before[2]:.2f}, at end {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f} "
        "(2 cores shared with other work: 2.0 means both cores busy)",
        f"- Command: `BENCH_ROWS={ROWS} make bench` (database {DB}; {REQUESTS} requests per "
        f"case after {WARMUP} warm-up; admin: {ADMIN_REQUESTS} after 1 warm-up)",
        f"- Load: {load_note}",
        "",
        "Server round trip in ms (median / p95); ratio = admin p95 / ours p95.",
        "",
        "| case | ours median | ours p95 | admin median | admin p95 | admin/ours | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    first_page = None
    deep = None
    ratio_missed = False
    for case, (med, p95), peer in lists:
        if case.startswith("Manage list, first page (all"):
            first_page = p95
        if case.startswith("Deep page"):
            deep = p95
        if case.startswith("Free text"):
            target = _verdict(p95 <= SEARCH_TARGET_MS, f"p95 {p95 / SEARCH_TARGET_MS:.1f}x 150")
        elif case.startswith("Row-detail"):
            target = _verdict(p95 <= DETAIL_TARGET_MS, f"p95 {p95 / DETAIL_TARGET_MS:.1f}x 15")
        elif case.startswith("Resource history"):
            target = _verdict(p95 <= HISTORY_TARGET_MS, f"p95 {p95 / HISTORY_TARGET_MS:.1f}x 50")
        elif case.startswith("Live-tail"):
            target = _verdict(p95 <= TAIL_TARGET_MS, f"p95 {p95 / TAIL_TARGET_MS:.1f}x 10")
        else:
            target = (
                f"<= 20: {_verdict(p95 <= LIST_TARGET_MS, f'p95 {p95 / LIST_TARGET_MS:.1f}x 20')}"
                f"; <= 30: {_verdict(p95 <= P95_TARGET_MS, f'p95 {p95 / P95_TARGET_MS:.1f}x 30')}"
            )
        if peer:
            pm, pp = peer
            ratio = pp / p95
            if ratio < RATIO_TARGET:
                target += f"; ratio **missed** ({ratio:.0f}x < 100x)"
                ratio_missed = True
            lines.append(
                f"| {case} | {med:.1f} | {p95:.1f} | {pm:.1f} | {pp:.1f} | {ratio:.0f}x "
                f"| {target} |"
            )
        else:
            lines.append(f"| {case} | {med:.1f} | {p95:.1f} | – | – | – | {target} |")
    if ratio_missed:
        lines += [
            "",
            "Where the ratio is missed: 100x the admin needs our round trip under 1/100 of "
            "the admin's time in this run; most of ours is Django's request path, not SQL "
            "(session, user, middleware, a few queries at ~1 ms each): see bench/NOTES.md, "
            "'Where a list request's time goes', and the profiles below.",
        ]
    if first_page and deep:
        lines += [
            "",
            f"Deep page / first page (all time), p95: **{deep / first_page:.2f}x** "
            f"(target <= 1.2x: {_verdict(deep <= 1.2 * first_page, 'over 1.2x')}).",
        ]
    if export:
        lines += [
            "",
            "### Export (CSV, streamed, Manage, all tenants)",
            "",
            f"{export['rows']:,} rows, {export['mb']:.0f} MB in {export['seconds']:.1f} s: "
            f"**{export['rows_per_s']:,.0f} rows/s** "
            f"(target >= 50,000: {_verdict(export['rows_per_s'] >= 50_000, 'slower')}), "
            f"worker peak RSS **{export['peak_rss_mb']:.0f} MB** "
            f"(target <= 150: {_verdict(export['peak_rss_mb'] <= 150, 'bigger')}; "
            f"{export['rss_before_mb']:.0f} MB before the request).",
        ]
    complete, during = exports12
    if complete:
        lines += [
            "",
            "### Complete exports (issue 12: CSV, all time, each alone on a fresh server)",
            "",
            "Complete = the row count and an md5 of the ids in order equal a direct query's.",
            "",
            "| export | rows | direct query | complete | s | rows/s | peak RSS MB | target |",
            "|---|---:|---:|---|---:|---:|---:|---|",
        ]
        for r in complete:
            verdict = _verdict(r["rate"] >= EXPORT_RATE_TARGET, "slower than 100,000 rows/s")
            verdict += "; RSS " + _verdict(r["peak_rss_mb"] <= EXPORT_RSS_TARGET_MB, "over 150 MB")
            if not r["complete"]:
                verdict += "; **incomplete**"
            lines.append(
                f"| {r['case']} | {r['rows']:,} | {r['expected']:,} | "
                f"{'yes' if r['complete'] else '**no**'} | {r['seconds']:.1f} | "
                f"{r['rate']:,.0f} | {r['peak_rss_mb']:.0f} | {verdict} |"
            )
        lines += [
            "",
            "CPU time per row in the same runs (this is what the load average does not "
            "change much): the gunicorn worker, the export's PostgreSQL backends, and "
            "this benchmark reading the stream (ids and md5); and the rate that CPU "
            "allows on 2 otherwise idle cores (`idle_rate` in bench/run.py).",
            "",
            "| export | worker µs/row | PostgreSQL µs/row | client µs/row "
            "| rows/s on 2 idle cores |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in complete:
            lines.append(
                f"| {r['case']} | {r['server_us']:.1f} | {r['pg_us']:.1f} | "
                f"{r['client_us']:.1f} | {r['idle_rate']:,.0f} |"
            )
    missed12 = (complete and any(r["rate"] < EXPORT_RATE_TARGET for r in complete)) or (
        during and during["p95"] > CONCURRENT_P95_TARGET_MS
    )
    if during:
        lines += [
            "",
            f"Tenant admin's list page (Dashboard, biggest tenant) alone on the same server "
            f"just before: {REQUESTS} requests, median {during['alone_median']:.1f} ms, "
            f"p95 {during['alone_p95']:.1f} ms. While both exports above "
            f"streamed at once: {during['requests']} requests, median {during['median']:.1f} ms, "
            f"**p95 {during['p95']:.1f} ms** (target <= 50: "
            f"{_verdict(during['p95'] <= CONCURRENT_P95_TARGET_MS, 'slower')}); exports "
            f"answered {during['statuses']} with {during['export_rows']} rows"
            + ("" if during["exports_outlasted"] else " (they ended before all requests ran)")
            + ".",
        ]
    if missed12:
        lines += [
            "",
            "Where these are missed: PostgreSQL writes the records and the worker only checks "
            "JSON texts for secrets, so an export needs the CPU per row above; on a machine "
            "whose load average exceeds its 2 cores, it gets a share of them. With two exports "
            "at once the list page competes for the cores with both exports' PostgreSQL "
            "backends (which nothing can nice) and this benchmark's readers, and for the GIL "
            "with the export threads of its worker (niced, which lowers their CPU share, not "
            "their turns at the GIL): see bench/NOTES.md, 'Exports at every size'.",
        ]
    if writer:
        lines += [
            "",
            "### Writer",
            "",
            f"{writer['entries']:,} `audit_log()` calls inside a recording span: "
            f"caller time p50 **{writer['p50_us']:.1f} µs**, p99 **{writer['p99_us']:.1f} µs** "
            f"(target <= 50: {_verdict(writer['p99_us'] <= 50, 'slower')}); "
            f"{writer['stored']:,} stored (into a fresh database `{WRITER_DB}` with the same "
            f"schema) in {writer['total_s']:.1f} s: "
            f"**{writer['rate']:,.0f} entries/s** into PostgreSQL "
            f"(target >= 20,000: {_verdict(writer['rate'] >= 20_000, 'slower')}).",
        ]
        if writer["p99_us"] > 50 or writer["rate"] < 20_000:
            lines += [
                "",
                "What limits the writer (GC pauses and 2 cores shared with the PostgreSQL "
                "backends for the caller's p99; the server's ~37 µs per row for the rate): "
                "bench/NOTES.md, 'Writer'.",
            ]
    if profiles:
        lines += ["", "Profiles (pyinstrument, 5 requests each): " + ", ".join(profiles) + "."]
    return "\n".join(lines) + "\n"


HEADER = """# Benchmark results

Written by `make bench` (bench/run.py): our screens served by gunicorn against the
Django admin changelist of the same table (bench/peer_admin.py) in the same run, on
PostgreSQL on this machine. One section per table size; a run replaces its own.
Notes on what limits each number are in bench/NOTES.md.
"""


def merge_results(existing: str, section: str, total: int) -> str:
    """RESULTS.md with this N's section replaced (or added), sections ordered by N."""
    sections: dict[int, str] = {}
    for chunk in existing.split("\n## N = ")[1:]:
        head = chunk.split(" ", 1)[0].replace(",", "")
        if head.isdigit():
            sections[int(head)] = "## N = " + chunk.rstrip() + "\n"
    sections[total] = section
    return HEADER + "".join("\n" + sections[n] for n in sorted(sections))


def writer_only() -> None:
    import json

    from django.core.management import call_command

    setup_django()
    call_command("migrate", verbosity=0)
    print(json.dumps(bench_writer()))


def main() -> None:
    say(f"{' '.join(shlex.quote(a) for a in sys.argv)} with BENCH_ROWS={ROWS}, database {DB}")
    loads_before = os.getloadavg()
    ensure_database()
    setup_django()
    total, load_note = load_rows()
    if os.environ.get("BENCH_LOAD_ONLY") == "true":
        say(f"BENCH_LOAD_ONLY=true: {total:,} entries in {DB}, stopping before measuring")
        return
    fx = prepare(total)
    lists = [] if "lists" in SKIP else bench_lists(fx)
    export = None if "export" in SKIP else bench_export(fx)
    complete = during = None
    if "exports" not in SKIP:
        complete = bench_complete_exports(fx)
        say("measuring the tenant admin's list page during two exports")
        during = bench_list_during_exports(fx)
    writer = None
    if "writer" not in SKIP:
        say(f"measuring the writer ({WRITER_ENTRIES:,} entries, database {WRITER_DB})")
        writer = bench_writer_isolated()
    profiles = [] if "profile" in SKIP else profile_requests(fx)
    say(f"profiles: {', '.join(profiles)}")
    section = report(
        total,
        load_note,
        (loads_before, os.getloadavg()),
        lists,
        export,
        writer,
        profiles,
        exports12=(complete, during),
    )
    print()
    print(section)
    out = ROOT / "bench" / "RESULTS.md"
    existing = out.read_text() if out.exists() else ""
    out.write_text(merge_results(existing, section, ROWS))
    say(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    if os.environ.get("BENCH_WRITER_ONLY") == "true":
        writer_only()
    else:
        main()
