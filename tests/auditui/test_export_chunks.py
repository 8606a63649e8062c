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
from django.db import connection, connections

from auditui import export
from auditui.views import csv_lines
from dmobs import readahead
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


def parse(text: str | bytes) -> list[dict]:
    if isinstance(text, bytes):
        text = text.decode()
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
    ours, theirs = parse(b"".join(chunks)), generic_rows()
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
    real = readahead.read_ahead

    def spy(chunks, **kwargs):
        threads.append(kwargs["name"])
        return real(chunks, **kwargs)

    monkeypatch.setattr(readahead, "read_ahead", spy)
    assert len(parse(b"".join(export.csv_chunks(AuditLog.objects.all(), chunk_rows=10)))) == 23
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
    names = ("export-read-ahead", "export-format", "export-range")
    return [t for t in threading.enumerate() if t.name.startswith(names)]


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are Linux's")
def test_the_export_reads_and_formats_at_lower_priority_in_threads_of_its_own(entries, monkeypatch):
    """The request's thread only hands the text on; finding the chunks, reading
    them (two at once) and formatting run in helper threads, niced, so other
    requests of the worker come first."""
    seen = {}
    real_chunks, real_text, real_fetch = (
        export._ranged_chunks,
        export._chunk_bytes,
        export._fetch_on,
    )

    def me() -> tuple[str, int]:
        thread = threading.current_thread()
        return thread.name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def chunks(*args, **kwargs):
        seen["read"] = me()
        yield from real_chunks(*args, **kwargs)

    def text(chunk):
        seen.setdefault("format", me())
        return real_text(chunk)

    def fetch(*args):
        seen.setdefault("query", set()).add(me())
        return real_fetch(*args)

    monkeypatch.setattr(export, "_ranged_chunks", chunks)
    monkeypatch.setattr(export, "_chunk_bytes", text)
    monkeypatch.setattr(export, "_fetch_on", fetch)
    base = me()
    assert len(parse(b"".join(export.csv_chunks(AuditLog.objects.all(), chunk_rows=5)))) == 23
    assert seen["read"][0] == "export-read-ahead" and seen["format"][0] == "export-format"
    assert seen["read"][1] > base[1] and seen["format"][1] > base[1]
    assert {name.split("_")[0] for name, _nice in seen["query"]} == {"export-range"}
    assert all(nice > base[1] for _name, nice in seen["query"])
    assert me() == base  # the caller's own thread is left as it was


def test_an_error_while_reading_ahead_reaches_the_consumer(entries, monkeypatch):
    real = export._fetch_on
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        # Two chunks are read at once, in either order: the third read fails.
        if len(calls) == 3:
            raise RuntimeError("lost the database (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_fetch_on", failing)
    chunks = export.csv_chunks(AuditLog.objects.all(), chunk_rows=5, read_ahead=True)
    next(chunks), next(chunks)
    with pytest.raises(RuntimeError, match="lost the database"):
        list(chunks)
    deadline = time.monotonic() + 5
    while _helpers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _helpers()


@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.parametrize("scope", ["tenants", "actor"])
def test_many_tenant_chunks_merge_every_entry_once_in_order(scope, read_ahead):
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
    ours = parse(b"".join(export.csv_chunks(qs, chunk_rows=4, read_ahead=read_ahead)))
    theirs = parse("".join(csv_lines(qs.order_by("-created_at", "-id"))))
    assert len(theirs) > 8
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    for mine, generic in zip(ours, theirs, strict=True):
        assert same_cells(mine, generic), (mine, generic)


# --- Records written by PostgreSQL (issue 12's export targets) -------------------

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Cells a spreadsheet or a CSV reader would trip on, for every text column.
HOSTILE_TEXTS = [
    'He said "hi", then left',
    "line one\r\nline two\nthree\rfour",
    '""',
    '","',
    "Zoë ☃ 𝐚 مرحبا \u2028 \u00ad",
    "",
    *(f"{t}SUM(A1)" for t in TRIGGERS),
    "'already quoted",
    "tab\tinside, comma",
    # Control characters, among them the separator of the joined JSON texts.
    "unit\x1fsep\x1erecord\x01\x7f",
    "\x1f",
]
_SEPARATORS = {"\x1e", "\x1f"}
# before/after values: JSON objects and arrays (some with secrets, some escaped or
# in other scripts), strings, numbers, booleans, JSON null (JSON_NULL) and NULL.
JSON_NULL = object()
HOSTILE_STATES = [
    None,
    JSON_NULL,
    True,
    False,
    0,
    -5,
    3.25,
    '=HYPERLINK("x")',
    "plain state",
    'quote " and\nnewline',
    "-starts with minus",
    [],
    {},
    [1, "=x", {"password": "p1"}, None],
    {"status": "draft", "tags": ["a", "b"], "n": 1.5},
    {"password": "hunter2", "user": "ann"},
    {"pass\nword": "escaped-key", "ok": 1},
    {"pаssword": "cyrillic-a"},
    {"name": "Zoë", "note": "ünïcode value only"},
    {"usage": {"inputTokens": 120, "outputTokens": 7}},
    {"secretTokens": 5},
    {"maxTokens": "4000"},
    {"note": "the password is in the vault"},
    {"x-api-key": "k", "nested": [{"Authorization": "Bearer t"}]},
    {"quote": 'a "b", c', "formula": "=1+1", "big": 1e100},
    {"k": 'tokens": 5'},
    {"pass\x1fword": "control-key", "note": "\x1f\x1e"},
    ["\x1f", {"ok": "\x01"}],
]


def _hostile_entries(count: int, *, separators: bool = True) -> list[AuditLog]:
    """Entries with hostile values in every column; without ``separators``, no
    text holds the control characters that separate PostgreSQL's cells and
    records (``export._CELL_END``, ``export._RECORD_END``): every chunk is then
    written by PostgreSQL."""
    from django.db.models import JSONField, Value

    texts = HOSTILE_TEXTS if separators else [t for t in HOSTILE_TEXTS if not _SEPARATORS & set(t)]
    rng = random.Random(2012)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        entry = make_entry(
            tenant=None,
            actor=("human", f"actor-{i % 5}", rng.choice(texts)),
            created_at=now - timedelta(seconds=i // 3),  # ties on the time: id decides
            rng=rng,
        )
        entry.tenant_id = rng.choice([None, "t-1", *texts[:4]])
        entry.actor_id = rng.choice(["u-1", *texts])
        entry.action = rng.choice(["updated", *texts[-4:]])
        entry.resource_type = rng.choice(["skill", "=cmd|' /C calc'!A0"])
        entry.resource_id = rng.choice(["sk_1", "@SUM(1)", "-1"])
        entry.resource_name = rng.choice([None, *texts])
        entry.description = rng.choice(texts)
        entry.trace_id = rng.choice([None, f"{i:032x}", "+trace"])
        for field in ("before", "after"):
            value = HOSTILE_STATES[(i * (3 if field == "before" else 7)) % len(HOSTILE_STATES)]
            setattr(entry, field, Value(None, JSONField()) if value is JSON_NULL else value)
        rows.append(entry)
    for entry in rows:
        entry.save()
    return rows


def _all_python(qs) -> str:
    """The records as the all-Python formatting writes them (``_line`` over the
    row's text columns): what the export wrote before PostgreSQL did."""
    from django.db.models import TextField
    from django.db.models.expressions import RawSQL

    columns = qs.annotate(
        **{n: RawSQL(sql, [], output_field=TextField()) for n, sql in export._ANNOTATIONS.items()}
    )
    rows = columns.order_by("-created_at", "-id").values_list(*export._TEXT_FIELDS)
    return "".join(export._line(row) for row in rows)


@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.parametrize("chunk_rows", [3, 1000])
def test_postgresql_writes_the_same_bytes_as_python_for_hostile_values(
    chunk_rows, read_ahead, monkeypatch
):
    """Quotes, commas, line breaks, formula prefixes in every column, other
    scripts, NULLs, JSON strings/numbers/literals/null, secrets in before/after
    (escaped and confusable keys included): byte for byte the all-Python records,
    cell for cell the generic export, masked where the generic export masks."""
    entries = _hostile_entries(len(HOSTILE_STATES) * 2)
    qs = AuditLog.objects.all()
    in_python = []
    real = export._python_range

    def spy(*args):
        in_python.append(args)
        return real(*args)

    monkeypatch.setattr(export, "_python_range", spy)
    chunks = export.csv_chunks(qs, chunk_rows=chunk_rows, read_ahead=read_ahead)
    chunks = [c.decode() for c in chunks]
    # A cell that holds a mark sends its chunk to Python; with small chunks
    # PostgreSQL writes the others.
    if chunk_rows == 3:
        assert 0 < len(in_python) < len(chunks) - 1
    else:
        assert len(in_python) == 1
    assert chunks[0] == ",".join(export.STORED_NAMES) + "\r\n"
    assert "".join(chunks[1:]) == _all_python(qs)
    ours, theirs = parse("".join(chunks)), generic_rows()
    assert [r["id"] for r in ours] == [r["id"] for r in theirs] and len(ours) == len(entries)
    for mine, generic in zip(ours, theirs, strict=True):
        assert same_cells(mine, generic), (mine, generic)
    text = "".join(chunks)
    for secret in ("hunter2", "escaped-key", "cyrillic-a", "Bearer t", "p1", "4000", "control-key"):
        assert secret not in text, secret
    for shown in ('"inputTokens": 120', "ünïcode value only", "the password is in the vault"):
        assert shown.replace('"', '""') in text, shown


def test_only_rows_that_may_hold_a_secret_are_formatted_in_python(monkeypatch):
    """PostgreSQL writes every record; Python formats only the before/after cells
    the quick check flags (a secret name, an escape, another script), in place."""
    _hostile_entries(len(HOSTILE_STATES), separators=False)
    formatted = []
    real = export._json_cell

    def spy(text):
        formatted.append(text)
        return real(text)

    monkeypatch.setattr(export, "_json_cell", spy)
    qs = AuditLog.objects.all()
    text = b"".join(export.csv_chunks(qs, chunk_rows=7, read_ahead=False)).decode()
    monkeypatch.setattr(export, "_json_cell", real)
    assert text.endswith(_all_python(qs))
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT before::text, after::text FROM audit_logs ORDER BY "createdAt" DESC, id DESC'
        )
        states = cursor.fetchall()
    objects = [[t for t in row if t and t[0] in "{["] for row in states]
    flagged = [t for texts in objects for t in texts if export._may_hold_secret(t)]
    assert 0 < len(flagged) < len(states)
    assert sorted(formatted) == sorted(flagged)


def test_a_many_tenant_scope_reads_one_walk_or_merges_with_the_same_bytes(monkeypatch):
    """A reviewer's tenants that hold most of the table are read in one walk of the
    time index; a small share is merged from one walk per tenant. Same bytes."""
    rng = random.Random(5)
    now = datetime.now(UTC)
    tenants = [f"t-share-{i}" for i in range(5)]
    rows = []
    for i in range(40):
        entry = make_entry(
            tenant=None,
            actor=("agent" if i % 3 else "system", f"a-{i % 4}", "=Bot"),
            created_at=now - timedelta(seconds=i // 2),
            rng=rng,
        )
        entry.tenant_id = tenants[i % 5]
        rows.append(entry)
    AuditLog.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_logs")
    big = AuditLog.objects.filter(tenant_id__in=tenants[:4], actor_type__in=["human", "agent"])
    small = AuditLog.objects.filter(tenant_id__in=tenants[:2] + ["t-none"])
    assert export._walks(big) is None  # 4 of 5 tenants' agents: one walk
    monkeypatch.setattr(export, "WALK_ALL_SHARE", 0.9)
    assert export._walks(small) == sorted([*tenants[:2], "t-none"])
    for qs in (big, small):
        outputs = []
        for share in (0.0, 1.1):  # always one walk, always merged
            monkeypatch.setattr(export, "WALK_ALL_SHARE", share)
            for read_ahead in (False, True):
                chunks = export.csv_chunks(qs, chunk_rows=4, read_ahead=read_ahead)
                outputs.append(b"".join(chunks).decode())
        assert len(set(outputs)) == 1
        assert outputs[0] == outputs[1]
        assert outputs[0].endswith(_all_python(qs)) and outputs[0].count('\r\n"') == qs.count()


def test_an_export_reads_no_further_chunk_while_another_request_is_in_flight(entries, monkeypatch):
    """Before each chunk after the first the export asks whether the server is
    busy (dmobs.foreground); told yes, it reads nothing more until the request in
    flight has ended, then the rest, every entry once."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from dmobs import foreground

    monkeypatch.setattr(foreground, "GRACE_SECONDS", 0.0)
    monkeypatch.setattr(export, "GIVE_WAY_SECONDS", 60.0)
    reads = []
    real_fetch = export._fetch_chunk

    def fetch(*args, **kwargs):
        reads.append(1)
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(export, "_fetch_chunk", fetch)
    waiting = threading.Event()
    reads_while_waiting = []
    real_busy = foreground.busy

    def busy():
        answer = real_busy()
        if answer and not waiting.is_set():
            reads_while_waiting.append(len(reads))
            waiting.set()
        return answer

    monkeypatch.setattr(foreground, "busy", busy)
    entered, release = threading.Event(), threading.Event()

    def screen(request):
        entered.set()
        release.wait(60)
        return HttpResponse("ok")

    request = threading.Thread(
        target=foreground.ForegroundMiddleware(screen), args=(RequestFactory().get("/"),)
    )
    chunks = export.csv_chunks(AuditLog.objects.all(), chunk_rows=5, read_ahead=False)
    header, first = next(chunks), next(chunks)
    request.start()
    entered.wait(60)
    rest = []

    def read_the_rest():
        try:
            rest.extend(chunks)
        finally:
            connections.close_all()  # this thread's own connection

    reader = threading.Thread(target=read_the_rest)
    reader.start()
    assert waiting.wait(60)
    assert reads_while_waiting == [1] and len(reads) == 1  # still only the first chunk
    release.set()
    request.join(60)
    reader.join(60)
    assert len(reads) == 5 and len(parse(b"".join([header, first, *rest]))) == 23


@pytest.mark.parametrize("where", ["inside a range", "after the last boundary"])
def test_entries_written_into_the_past_during_an_export_are_all_in_it(entries, monkeypatch, where):
    """Two chunks are read at once between boundaries found first. Entries written
    meanwhile with old times (a replay) land inside a range already bounded, or
    beyond the last boundary: the export still holds every entry once, in order."""
    rng = random.Random(3)
    real = export._range_params
    done = []

    open_ranges = []  # the last boundary's query, then the last range's read

    def params(template, start, end):
        if start is not None and end is None:
            open_ranges.append(start)
        inside = where == "inside a range" and start is None and end is not None
        after = where != "inside a range" and open_ranges.count(start) == 2
        if not done and (inside or after):
            if where == "inside a range":
                at = [end.created_at + timedelta(milliseconds=500)] * 7  # > one read's 10
            else:
                oldest = AuditLog.objects.order_by("created_at").first().created_at
                at = [oldest - timedelta(days=1, seconds=i) for i in range(12)]
            done.append(
                AuditLog.objects.bulk_create(
                    make_entry(
                        tenant=None, actor=("human", "u-past", "Past"), created_at=t, rng=rng
                    )
                    for t in at
                )
            )
        return real(template, start, end)

    monkeypatch.setattr(export, "_range_params", params)
    ours = parse(b"".join(export.csv_chunks(AuditLog.objects.all(), chunk_rows=5, read_ahead=True)))
    assert done
    expected = generic_rows()
    assert len(expected) == len(entries) + len(done[0])
    assert [r["id"] for r in ours] == [r["id"] for r in expected]
