"""The PostgreSQL CSV export (auditui.export): keyset chunks, read ahead by a
helper thread outside a transaction, with the same cells as the generic export."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from auditui import export
from auditui.views import csv_lines
from dmobs.models import AuditLog
from tests.auditui.conftest import make_entry

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the chunked CSV export is PostgreSQL's own"
    ),
    # Committed rows: the read-ahead thread reads on a connection of its own.
    pytest.mark.django_db(transaction=True),
]

JSON_COLUMNS = ("before", "after")


@pytest.fixture
def entries():
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows = [
        make_entry(
            tenant=None,
            actor=("agent", f"agent-{i % 3}", "=Planner" if i % 4 == 0 else "Planner"),
            created_at=now - timedelta(seconds=i // 2),  # pairs share a time: id breaks ties
            rng=rng,
        )
        for i in range(23)
    ]
    rows[3].before = "plain text state"
    rows[4].after = {"usage": {"inputTokens": 120}, "apiKey": "sk-live-1"}
    rows[5].description = 'He said "hi",\r\nthen left'
    rows[6].before, rows[6].after = None, True
    return AuditLog.objects.bulk_create(rows)


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def generic_rows() -> list[dict]:
    return parse("".join(csv_lines(AuditLog.objects.order_by("-created_at", "-id"))))


def same_cells(ours: dict, theirs: dict) -> bool:
    for name, value in theirs.items():
        if name in JSON_COLUMNS and value.startswith(("{", "[")):
            if json.loads(ours[name]) != json.loads(value):
                return False
        elif ours[name] != value:
            return False
    return True


@pytest.mark.parametrize("read_ahead", [True, False])
def test_chunks_hold_every_entry_once_with_the_generic_exports_cells(entries, read_ahead):
    chunks = list(export.csv_chunks(AuditLog.objects.all(), chunk_rows=5, read_ahead=read_ahead))
    assert len(chunks) == 1 + 5  # the header, then 23 rows in chunks of 5
    ours, theirs = parse("".join(chunks)), generic_rows()
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    assert len({r["id"] for r in ours}) == 23
    for mine, generic in zip(ours, theirs, strict=True):
        assert same_cells(mine, generic), (mine, generic)
    by_id = {r["id"]: r for r in ours}
    assert by_id[entries[0].id]["actorName"] == "'=Planner"
    assert json.loads(by_id[entries[4].id]["after"]) == {
        "usage": {"inputTokens": 120},
        "apiKey": "••••••",
    }
    assert by_id[entries[5].id]["description"] == 'He said "hi",\r\nthen left'


def test_read_ahead_is_the_default_outside_a_transaction(entries, monkeypatch):
    threads = []
    real = export._read_ahead

    def spy(chunks, **kwargs):
        threads.append(kwargs.get("name", "export-read-ahead"))
        return real(chunks, **kwargs)

    monkeypatch.setattr(export, "_read_ahead", spy)
    assert len(parse("".join(export.csv_chunks(AuditLog.objects.all(), chunk_rows=10)))) == 23
    assert sorted(threads) == ["export-format", "export-read-ahead"]


def test_a_consumer_that_stops_early_leaves_no_thread_or_connection(entries, pg_connections):
    before = pg_connections()
    chunks = export.csv_chunks(AuditLog.objects.all(), chunk_rows=5, read_ahead=True)
    header = next(chunks)
    assert len(parse(header + next(chunks))) == 5
    chunks.close()  # the client went away
    deadline = time.monotonic() + 5
    while _helpers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _helpers()
    assert pg_connections.settle_at(before) == before


def _helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("export-read-ahead", "export-format")]


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are Linux's")
def test_the_export_reads_and_formats_at_lower_priority_in_threads_of_its_own(entries, monkeypatch):
    """The request's thread only hands the text on; reading and formatting run
    in two helper threads, niced, so other requests of the worker come first."""
    seen = {}
    real_chunks, real_line = export._keyset_chunks, export._line

    def me() -> tuple[str, int]:
        thread = threading.current_thread()
        return thread.name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def chunks(*args, **kwargs):
        seen["read"] = me()
        yield from real_chunks(*args, **kwargs)

    def line(row):
        seen.setdefault("format", me())
        return real_line(row)

    monkeypatch.setattr(export, "_keyset_chunks", chunks)
    monkeypatch.setattr(export, "_line", line)
    base = me()
    assert len(parse("".join(export.csv_chunks(AuditLog.objects.all(), chunk_rows=5)))) == 23
    assert seen["read"][0] == "export-read-ahead" and seen["format"][0] == "export-format"
    assert seen["read"][1] > base[1] and seen["format"][1] > base[1]
    assert me() == base  # the caller's own thread is left as it was


def test_an_error_while_reading_ahead_reaches_the_consumer(entries, monkeypatch):
    real = export._fetch_text
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("lost the database (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_fetch_text", failing)
    chunks = export.csv_chunks(AuditLog.objects.all(), chunk_rows=5, read_ahead=True)
    next(chunks), next(chunks)
    with pytest.raises(RuntimeError, match="lost the database"):
        list(chunks)
    deadline = time.monotonic() + 5
    while _helpers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _helpers()


@pytest.mark.parametrize("scope", ["tenants", "actor"])
def test_many_tenant_chunks_merge_every_entry_once_in_order(scope):
    """A reviewer's tenants, or an actor over several tenants (Manage): chunks of
    per-tenant index walks merged by PostgreSQL hold exactly the generic export's
    rows and cells, in order, ties on the time included."""
    rng = random.Random(12)
    now = datetime.now(UTC)
    tenants = [f"t-merge-{i}" for i in range(6)]
    rows = []
    for i in range(60):
        entry = make_entry(
            tenant=None,
            actor=("human", f"u-{i % 2}", "Ann"),
            created_at=now - timedelta(seconds=i // 3),
            rng=rng,
        )
        entry.tenant_id = tenants[(i * 7) % 6] if i % 10 else None
        rows.append(entry)
    AuditLog.objects.bulk_create(rows)
    if scope == "tenants":
        qs = AuditLog.objects.filter(tenant_id__in=tenants[:4])
    else:
        qs = AuditLog.objects.filter(actor_id="u-1")
    assert export.tenant_branches(qs.order_by("-created_at", "-id")) is not None
    ours = parse("".join(export.csv_chunks(qs, chunk_rows=4, read_ahead=False)))
    theirs = parse("".join(csv_lines(qs.order_by("-created_at", "-id"))))
    assert len(theirs) > 8
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    for mine, generic in zip(ours, theirs, strict=True):
        assert same_cells(mine, generic), (mine, generic)
