"""The app as gunicorn serves it (dmobs/gunicorn.conf.py), on a database of this
module's own: issue 12, findings 3 and 7, and the workers' collector (issue 16).

- Started without DJANGO_SETTINGS_MODULE it serves (it answered 500 to everything).
- A CSV export that lasts longer than the worker timeout (a client reading
  slowly, as over a slow link) arrives complete, every entry once and in order,
  and while two such exports stream from the only worker, a list page is served.
  Sync workers serve one request at a time and are killed when one outlasts the
  timeout, so the export was cut and everyone else waited.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.obs_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
ROWS = 12_000


@dataclass
class ServedDb:
    url: str
    cookie: str
    ids: list[str]  # every entry, newest first (the export's order)


def _env(tmp: Path, url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "AUDIT_", "PYTEST_", "PROMETHEUS_", "DJANGO_", "GUNICORN_"))
    }
    env.update(
        SECRET_KEY="serving-test-secret-key-" + "x" * 40,
        DEBUG="false",
        DMOBS_HTTPS="false",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=url,
        AUDIT_SPOOL_DIR=str(tmp / "spool"),
        LOG_LEVEL="WARNING",
        DMOBS_ACCESS_LOG="false",
        PYTHONPATH=str(ROOT),
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


SESSION_SCRIPT = """
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from dmobs.models import User
user, _ = User.objects.get_or_create(
    username="serve_root", defaults={"is_superuser": True, "is_staff": True}
)
store = SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "dmobs.auth.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(f"{settings.SESSION_COOKIE_NAME}={store.session_key}")
"""
ORDERED_IDS = 'SELECT id FROM audit_logs ORDER BY "createdAt" DESC, id DESC'


@pytest.fixture(scope="module")
def served_db(tmp_path_factory) -> Iterator[ServedDb]:
    tmp = tmp_path_factory.mktemp("serving")
    admin_url = name = None
    if ON_POSTGRES:
        import psycopg

        parts = urlsplit(DATABASE_URL)
        name = f"{parts.path.lstrip('/') or 'dmobs'}_serve_{secrets.token_hex(3)}"
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(parts._replace(path=f"/{name}"))
    else:
        url = f"sqlite:///{tmp / 'serve.sqlite3'}"
    try:
        env = _env(tmp, url)
        _manage(env, "migrate", "--no-input", "-v", "0")
        # Production settings serve hashed static names from the manifest.
        _manage(env, "collectstatic", "--no-input", "-v", "0")
        _manage(env, "audit_load", "--rows", str(ROWS), "--tenants", "3", "--days", "30")
        cookie = _manage(env, "shell", "-c", SESSION_SCRIPT).strip().splitlines()[-1]
        if ON_POSTGRES:
            import psycopg

            with psycopg.connect(url) as conn:
                ids = [row[0] for row in conn.execute(ORDERED_IDS)]
        else:
            with sqlite3.connect(tmp / "serve.sqlite3") as conn:
                ids = [row[0] for row in conn.execute(ORDERED_IDS)]
        assert len(ids) == ROWS
        yield ServedDb(url=url, cookie=cookie, ids=ids)
    finally:
        if ON_POSTGRES:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Gunicorn:
    """gunicorn with the project's config file, one worker, on a free port."""

    def __init__(self, env: dict[str, str], *args: str, config: str = "dmobs/gunicorn.conf.py"):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "-c", config,
                "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--no-control-socket",
                *args, "dmobs.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.stderr.read().decode()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not come up")

    def get(self, path: str, cookie: str = "") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return err.decode()


def test_gunicorn_without_django_settings_module_serves(served_db, tmp_path):
    env = _env(tmp_path, served_db.url)
    assert "DJANGO_SETTINGS_MODULE" not in env
    server = Gunicorn(env)
    try:
        answers = [
            server.get("/healthz"),
            server.get("/accounts/login/"),
            server.get("/manage/audit", served_db.cookie),
        ]
    finally:
        log = server.stop()
    assert [status for status, _body in answers] == [200, 200, 200], log[-3000:]
    assert b"<form" in answers[1][1]


# The project's gunicorn settings, plus a hook that reports the worker's collector
# after every request (what the worker froze, its threshold, collections so far).
GC_REPORTING_CONFIG = """
import gc, json, runpy
globals().update(
    {{k: v for k, v in runpy.run_path({conf!r}).items() if not k.startswith("__")}}
)

def post_request(worker, req, environ, resp):
    with open({report!r}, "a") as out:
        out.write(json.dumps({{
            "frozen": gc.get_freeze_count(),
            "threshold": gc.get_threshold()[0],
            "young_collections": gc.get_stats()[0]["collections"],
        }}) + "\\n")
"""


def test_workers_freeze_the_app_and_list_pages_leave_the_collector_idle(served_db, tmp_path):
    """The workers move the loaded app out of the collector's sight and collect the
    young generation every 20,000 allocations (dmobs/gunicorn.conf.py); a list page
    leaves so little in reference cycles (auditui.views.render_page) that 150 of
    them fill it at most once. When the page's rows were left in cycles, 150 pages
    made four or five collections of ~20,000 objects each (bench/NOTES.md)."""
    report = tmp_path / "gc.jsonl"
    config = tmp_path / "gunicorn_gc.conf.py"
    config.write_text(
        GC_REPORTING_CONFIG.format(
            conf=str(ROOT / "dmobs" / "gunicorn.conf.py"), report=str(report)
        )
    )
    server = Gunicorn(_env(tmp_path, served_db.url), config=str(config))
    try:
        statuses = [server.get("/manage/audit?range=all", served_db.cookie)[0] for _ in range(160)]
    finally:
        log = server.stop()
    assert set(statuses) == {200}, log[-3000:]
    seen = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(seen) == 160
    assert all(s["frozen"] > 50_000 for s in seen), seen[0]
    assert {s["threshold"] for s in seen} == {20_000}
    # After ten pages (first-use caches filled), 150 more.
    assert seen[-1]["young_collections"] - seen[9]["young_collections"] <= 1, [
        s["young_collections"] for s in seen
    ]


class SlowDownload(threading.Thread):
    """A client that reads an export slowly (small socket buffer, pauses), so
    the request lasts several times the worker timeout."""

    def __init__(self, port: int, path: str, cookie: str):
        super().__init__(daemon=True)
        self.port, self.path, self.cookie = port, path, cookie
        self.body = bytearray()
        self.status = None
        self.started_streaming = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.connect(("127.0.0.1", self.port))
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.sock = sock
            conn.request("GET", self.path, headers={"Cookie": self.cookie})
            response = conn.getresponse()
            self.status = response.status
            while chunk := response.read(16 * 1024):
                self.body += chunk
                self.started_streaming.set()
                time.sleep(0.02)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.started_streaming.set()


def _exported_ids(body: bytes) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(body.decode()))]


def test_exports_outlast_the_worker_timeout_complete_and_others_are_served(served_db, tmp_path):
    env = _env(tmp_path, served_db.url)
    server = Gunicorn(env, "--timeout", "1")
    path = "/manage/audit/export?format=csv&range=all"
    downloads = [SlowDownload(server.port, path, served_db.cookie) for _ in range(2)]
    try:
        started = time.monotonic()
        for download in downloads:
            download.start()
        for download in downloads:
            assert download.started_streaming.wait(30)
        # Both exports are streaming from the only worker: a list page is served
        # before either of them has finished.
        status, body = server.get("/manage/audit?range=all", served_db.cookie)
        assert status == 200 and b'class="entry"' in body
        assert all(d.is_alive() for d in downloads), "the exports ended too soon to tell"
        for download in downloads:
            download.join(120)
        elapsed = time.monotonic() - started
    finally:
        log = server.stop()
    assert elapsed > 2, "the exports did not outlast the 1 s worker timeout"
    assert "WORKER TIMEOUT" not in log
    for download in downloads:
        assert download.error is None, download.error
        assert download.status == 200
        assert _exported_ids(bytes(download.body)) == served_db.ids
