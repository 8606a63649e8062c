"""CSV export at database speed (PostgreSQL).

The generic export (``views.csv_lines``) builds a model instance, a record
dict and a CSV line per entry: about 20,000 rows/s on these machines. Here the
per-row work is split between PostgreSQL and Python by what each does cheaply:

1. PostgreSQL reads keyset chunks of ``CHUNK_ROWS`` and writes each row's record
   (``_line_sql``): ``createdAt`` as ISO-8601 (ms, ``Z``), the JSON columns as
   their jsonb text, JSON strings decoded, in C, on the database's own core. It
   neither guards nor quotes a cell: each cell stands between an opening and a
   closing mark (control characters), a before/after object or array between
   JSON marks. It joins a chunk's records into one text and sends it with the
   row count and the last row's position: a handful of values per chunk,
   fetched as bytes. With read-ahead, two chunks are read at once on two
   connections of the export's own, between boundaries found first
   (``_ranged_chunks``).
2. Python splits the chunk at the JSON marks (the object cells are every second
   piece) and checks those cells for secrets, a whole chunk at a time at C speed
   (``_texts_to_mask``). The check may only skip a text ``dmobs.vocabulary``
   would leave alone: in a text of plain ASCII with no backslash every key is
   written as it decodes, so its skeleton is the lower-cased letters and digits
   and leaves a secret name in the whole text's; any escape (``pass\nword``) or
   other script (``pаssword``) flags the text. A flagged cell is made by
   ``_json_cell``, i.e. masked by ``dmobs.vocabulary``, in its place.
3. Python then guards, quotes and punctuates the whole chunk at once
   (``_as_csv``): a ' after every opening mark a formula character follows, the
   quotes doubled, the marks made quotes. These are the bytes the all-Python
   ``_line`` writes. A chunk one of whose cells holds a mark itself (the counts
   tell) is written by ``_line`` instead (``_python_range``).
4. The chunk's bytes go to the socket as they are (no decoding and encoding
   again), and before reading the next chunk an export gives way to the server's
   other requests (``dmobs.foreground``).

The CSV carries the same columns and cells as the generic export, except that
JSON cells are PostgreSQL's canonical jsonb text (``{"a": 1}``) rather than
Python's compact one, and every cell is quoted. Whether a record was written by
PostgreSQL or by Python, its bytes are the same (tests/auditui/test_export_chunks.py).
"""

from __future__ import annotations

import collections
import contextvars
import csv
import functools
import io
import itertools
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from django.db import connections
from django.db.models import Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from psycopg import RawCursor
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format

from auditui import stored
from auditui.paging import Cursor, after_cursor, tenant_branches
from dmobs import foreground, readahead
from dmobs.records import FIELDS as RECORD_FIELDS
from dmobs.records import STORED_NAMES
from dmobs.vocabulary import (
    CSV_TRIGGERS,
    MASK,
    SECRET_KEY_PARTS,
    TOKEN_COUNT_SUFFIX,
    is_masked,
)

CHUNK_ROWS = 5000
# Bytes that are not [a-z0-9], deleted by bytes.translate (for plain ASCII the same
# skeleton as dmobs.vocabulary.key_skeleton, applied to the whole JSON text at C speed).
_DELETE = bytes(b for b in range(256) if not (48 <= b <= 57 or 97 <= b <= 122))
_SECRET_PART = re.compile("|".join(SECRET_KEY_PARTS).encode())

# Values in STORED_NAMES order (dmobs.records.FIELDS); JSON and time columns come
# as text formatted by PostgreSQL (the annotations below).
_AS_TEXT = {"before": "x_before", "after": "x_after", "created_at": "x_created"}
_TEXT_FIELDS = tuple(_AS_TEXT.get(name, name) for name, _stored in RECORD_FIELDS)
_ANNOTATIONS = {
    "x_before": '"before"::text',
    "x_after": '"after"::text',
    "x_created": """to_char("createdAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""",
}
BEFORE, AFTER = STORED_NAMES.index("before"), STORED_NAMES.index("after")


# `tokens": 5` in JSON text can only be a key ending in "tokens" with a number
# value (after a string value comes , ] or }, and a quote inside a string is
# escaped): a token count, which masking.is_masked shows. Dropping the word leaves
# the rest of the key to the check below (``secretTokens`` still matches).
_TOKEN_COUNT = re.compile(TOKEN_COUNT_SUFFIX + r'(?=": -?[0-9])')  # jsonb text: `"key": value`


def _may_hold_secret(text: str) -> bool:
    """False only when ``dmobs.vocabulary`` would mask nothing in this JSON text."""
    if "\\" in text or not text.isascii():
        return True  # escapes or other scripts: only the decoded keys can tell
    lowered = text.lower()
    if TOKEN_COUNT_SUFFIX in lowered:
        lowered = _TOKEN_COUNT.sub("", lowered)
    normalised = lowered.encode("ascii", "ignore").translate(None, _DELETE)
    return _SECRET_PART.search(normalised) is not None


# JSON scalars as the generic export shows them (``views.csv_cell``: str() of the value).
_JSON_LITERALS = {"true": "True", "false": "False", "null": ""}


def _json_cell(text: str | None) -> str:
    if text is None:
        return ""
    if text.startswith('"'):
        text = json.loads(text)  # a JSON string is shown as the string itself
        return "'" + text if text.startswith(CSV_TRIGGERS) else text
    if text in _JSON_LITERALS:
        return _JSON_LITERALS[text]
    if _may_hold_secret(text):
        text = _masked_text(text)
    return "'" + text if text.startswith(CSV_TRIGGERS) else text


def _masked_text(text: str) -> str:
    """The JSON text with the values of secret keys masked (``dmobs.vocabulary``):
    masked as ``json.loads`` builds each object, written back by ``json.dumps``,
    both in C. What they cannot take (too deep, not JSON) goes through
    ``auditui.stored``, which handles any depth, to the same text."""
    try:
        value = json.loads(text, object_hook=_mask_object)
        return json.dumps(value, ensure_ascii=False, separators=stored.SPACED, allow_nan=False)
    except (RecursionError, ValueError):
        return stored.dumps(stored.masked(stored.loads(text)), separators=stored.SPACED)


def _mask_object(value: dict) -> dict:
    for key, child in value.items():
        if is_masked(key, child):
            value[key] = MASK  # a value replaced, no key added: the walk goes on
    return value


def _line(row: tuple) -> str:
    """One CSV record, every cell quoted (valid RFC 4180; no per-character scan
    to decide whether a cell needs quotes, which is most of the csv module's cost)."""
    cells = [
        "" if v is None else ("'" + v if v.startswith(CSV_TRIGGERS) else v).replace('"', '""')
        for v in row
    ]
    cells[BEFORE] = _json_cell(row[BEFORE]).replace('"', '""')
    cells[AFTER] = _json_cell(row[AFTER]).replace('"', '""')
    return '"' + '","'.join(cells) + '"\r\n'


# --- Records written by PostgreSQL --------------------------------------------
#
# The chunk's SQL (one index walk, or per-tenant walks merged) selects the text
# fields in STORED_NAMES order and then the stored time; the query below names
# them c0 .. c14 and writes each row's cells between marks (below), and joins
# the chunk (string_agg), so the driver hands over a few values per chunk instead
# of five Python objects per row. Guarding and quoting in SQL (a CASE and a
# ``replace`` per cell) took about half of PostgreSQL's time per row; Python does
# both for a whole chunk at memory speed.

_CREATED = len(_TEXT_FIELDS)  # c14: the stored createdAt (timestamptz), the position
_CREATED_TEXT = _TEXT_FIELDS.index("x_created")  # c13: createdAt as to_char wrote it
_OBJECT_OR_ARRAY = f"{ord('{')}, {ord('[')}"
_QUOTE = ord('"')
# The punctuation of the records as PostgreSQL writes them: each cell between an
# opening and a closing mark, control characters that ``_as_csv`` turns into
# quotes; a cell's own quotes are not doubled yet and no cell is guarded yet. A
# before or after that is a JSON object or array (only those can hold a key, and
# none starts with a formula character) is between JSON marks instead, so that
# Python finds those cells by one split. Python puts the formula guard after
# every opening mark that a formula character follows (``_GUARD``).
_OPEN = b"\x1c"
_CLOSE = b"\x1f"
_JSON_MARK = b"\x1e"
_QUOTES = bytes(range(256))
for _mark in (_OPEN, _CLOSE, _JSON_MARK):
    _QUOTES = _QUOTES.replace(_mark, b'"')
_GUARD = re.compile(re.escape(_OPEN) + b"(?=[" + re.escape("".join(CSV_TRIGGERS).encode()) + b"])")
# Between the object texts of a chunk for the secret check: a mark, which no
# cell of a chunk taken as it is holds.
_SEP = _CLOSE


def _sql_json_cell(text: str) -> str:
    """SQL of ``_json_cell``'s cell, unguarded, for a JSON text that needs no
    masking: a JSON string decoded, true/false/null as Python shows them,
    anything else (objects, arrays, numbers) as is."""
    literals = " ".join(
        f"WHEN {text} = '{literal}' THEN '{shown}'" for literal, shown in _JSON_LITERALS.items()
    )
    return (
        f"CASE WHEN ascii({text}) IN ({_OBJECT_OR_ARRAY}) THEN {text} "
        f"WHEN ascii({text}) = {_QUOTE} THEN ({text}::jsonb #>> '{{}}') {literals} ELSE {text} END"
    )


def _sql_mark(text: str, mark: bytes) -> str:
    """The JSON mark around a before/after object or array, ``mark`` otherwise."""
    return (
        f"CASE WHEN ascii({text}) IN ({_OBJECT_OR_ARRAY}) "
        f"THEN {_sql_bytes(_JSON_MARK)} ELSE {_sql_bytes(mark)} END"
    )


def _sql_bytes(value: bytes) -> str:
    return "E'" + "".join(f"\\x{byte:02x}" for byte in value) + "'"


@functools.lru_cache(maxsize=32)
def _line_sql(chunk_sql: str) -> str:
    """The chunk as one row (``Chunk``): the records, the row count, and the last
    row's createdAt and id.

    A record is one ``concat`` of its cells and punctuation: a chain of ``||``
    copied the growing record at every step. The aggregates read the rows in the
    order of the subquery (a plain aggregate over an ordered subquery does; an
    ORDER BY inside each aggregate would sort the chunk once per aggregate), and
    that subquery's ORDER BY also keeps PostgreSQL from pulling it up, so each
    record is computed once.
    """
    # Cells (SQL) and punctuation (bytes, each run of it one literal).
    parts: list[str | bytes] = []
    for index in range(len(_TEXT_FIELDS)):
        column = f"c{index}"
        if index:
            parts.append(b",")
        if index in (BEFORE, AFTER):
            parts += [_sql_mark(column, _OPEN), _sql_json_cell(column), _sql_mark(column, _CLOSE)]
        else:
            # createdAt: to_char's digits, '-', ':', '.', T and Z (BC years too).
            parts += [_OPEN, column, _CLOSE]
    parts.append(b"\r\n")
    merged = [
        _sql_bytes(b"".join(run)) if literal else ", ".join(run)
        for literal, run in itertools.groupby(parts, key=lambda part: isinstance(part, bytes))
    ]
    record = f"concat({', '.join(merged)})"
    names = ", ".join(f"c{i}" for i in range(_CREATED + 1))
    return (
        "SELECT string_agg(r, ''), count(*), min(t), (array_agg(i))[count(*)] "
        f"FROM (SELECT {record} AS r, c{_CREATED} AS t, c0::text AS i "
        f"FROM ({chunk_sql}) AS c({names}) ORDER BY c{_CREATED} DESC, c0 DESC) AS chunk"
    )


# The skeleton of a chunk's texts at once: the translation keeps the separator,
# so a secret name never spans two texts and the separators before a hit count
# the texts before its own.
_DELETE_BUT_SEP = _DELETE.replace(_SEP, b"")
_SECRET_NAMES = tuple(part.encode() for part in SECRET_KEY_PARTS)
_TOKEN_COUNT_BYTES = re.compile(_TOKEN_COUNT.pattern.encode())
_ESCAPE_OR_WIDE = re.compile(rb"[\\\x80-\xff]")


def _texts_to_mask(texts: bytes) -> list[int]:
    """Indexes of the texts (UTF-8, joined by ``_SEP``) that ``_may_hold_secret``
    flags: the same steps over a whole chunk, a handful of C calls instead of
    several per row. For a text of plain ASCII without a backslash, ``lower`` and
    ``translate`` of its bytes are the steps on its str; any other text is
    flagged by the first search, whatever its skeleton."""
    hits = []
    if b"\\" in texts or not texts.isascii():
        at = 0
        while found := _ESCAPE_OR_WIDE.search(texts, at):
            hits.append(found.start())
            end = texts.find(_SEP, found.start())  # on to the next text
            at = end if end >= 0 else len(texts)
    rows = set(_rows_of(texts, hits))
    lowered = texts.lower()
    if TOKEN_COUNT_SUFFIX.encode() in lowered:
        lowered = _TOKEN_COUNT_BYTES.sub(b"", lowered)
    skeleton = lowered.translate(None, _DELETE_BUT_SEP)
    hits = []
    for name in _SECRET_NAMES:
        at = skeleton.find(name)
        while at >= 0:
            hits.append(at)
            end = skeleton.find(_SEP, at)
            at = -1 if end < 0 else skeleton.find(name, end)
    return sorted(rows.union(_rows_of(skeleton, hits)))


def _rows_of(texts: bytes, positions: list[int]) -> list[int]:
    """The index of the text each position falls in: the separators before it."""
    positions.sort()
    rows, row, counted = [], 0, 0
    for at in positions:
        row += texts.count(_SEP, counted, at)
        counted = at
        rows.append(row)
    return rows


def _as_csv(records: bytes) -> bytes:
    """The chunk's records as CSV: the formula guard put in, each cell's quotes
    doubled, then the marks around the cells made quotes (the bytes ``_line``
    writes)."""
    return _GUARD.sub(_OPEN + b"'", records).replace(b'"', b'""').translate(_QUOTES)


@dataclass(frozen=True)
class Chunk:
    """One chunk as PostgreSQL sends it (``_line_sql``)."""

    records: bytes  # cells between marks, unguarded, their own quotes not yet doubled
    rows: int
    # The chunk's rows written by ``_line`` (``_python_range``), for a chunk one
    # of whose cells holds a mark.
    in_python: Callable[[], bytes]
    last: Cursor | None = None  # the last row's position
    written: bytes | None = None  # the CSV already (the rest of a range, ``_range_chunks``)


def _chunk_bytes(chunk: Chunk) -> bytes:
    """One chunk's CSV: PostgreSQL's records, the flagged JSON cells masked in
    place by ``_json_cell`` (``dmobs.vocabulary``), then guarded and quoted."""
    if chunk.written is not None:
        return chunk.written
    # The pieces between JSON marks: the object cells are every second one.
    pieces = chunk.records.split(_JSON_MARK)
    if not _well_marked(chunk.records, len(pieces) - 1, chunk.rows):
        return chunk.in_python()
    objects = pieces[1::2]
    flagged = _texts_to_mask(_SEP.join(objects))
    for index in flagged:
        # The masked text: JSON escapes every control character, so no mark
        # can come back in it.
        pieces[1 + 2 * index] = _json_cell(objects[index].decode()).encode()
    records = _JSON_MARK.join(pieces) if flagged else chunk.records
    del pieces, objects
    return _as_csv(records)


def _well_marked(records: bytes, json_marks: int, rows: int) -> bool:
    """Whether the chunk's marks are exactly its cells' own. Each cell has an
    opening and a closing mark or two JSON marks; a mark inside a cell only adds
    to a count, so the counts add up only when no cell holds one."""
    opening = records.count(_OPEN)
    return opening == records.count(_CLOSE) and 2 * opening + json_marks == (
        rows * 2 * len(_TEXT_FIELDS)
    )


def csv_chunks(
    qs: QuerySet,
    *,
    chunk_rows: int = CHUNK_ROWS,
    read_ahead: bool | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The header, then the CSV bytes (UTF-8) of each keyset chunk of ``qs``
    (newest first); ``on_rows`` is told each chunk's row count as it is handed on.

    With ``read_ahead`` (the default outside a transaction) helper threads read
    two chunks at once on connections of the export's own (``_ranged_chunks``)
    while another formats the one before, so the database's time per row
    overlaps with Python's instead of adding to it.
    Inside a transaction the chunks are read here, where that transaction's view
    of the data is. Before each chunk is read, the export gives way to the
    server's other requests (``dmobs.foreground``).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STORED_NAMES)
    yield buffer.getvalue().encode()
    if read_ahead is None:
        read_ahead = not connections[qs.db].in_atomic_block
    if read_ahead:
        chunks = _ranged_chunks(qs, chunk_rows)
        # Two helper threads of lower CPU priority: one reads, one formats; the
        # request's own thread only writes to the socket. An export is bulk work:
        # on a busy machine the screens' requests in the same worker come first.
        formatted = readahead.read_ahead(
            _formatted(readahead.read_ahead(chunks, name="export-read-ahead", nice=EXPORT_NICE)),
            name="export-format",
            nice=EXPORT_NICE,
        )
    else:
        formatted = _formatted(_keyset_chunks(qs, chunk_rows))
    try:
        for data, rows in formatted:
            if on_rows is not None:
                on_rows(rows)
            yield data
    finally:
        formatted.close()  # stops the helper threads behind it


def _formatted(chunks: Iterator[Chunk]) -> Iterator[tuple[bytes, int]]:
    try:
        for chunk in chunks:
            yield _chunk_bytes(chunk), chunk.rows
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # stops a read-ahead thread behind it


# The position after which a chunk starts, in the compiled SQL of a chunk: the
# SQL is compiled once per export with these stand-ins and each chunk swaps in
# its own values (compiling 50 tenant branches per chunk cost ~25 µs a row).
_AT_TIME = datetime(2000, 1, 1, 0, 0, 0, 123457, tzinfo=UTC)
_AT_ID = "\x1fkeyset-id\x1f"

# Longest an export waits for the server's other requests before reading its
# next chunk: screens first, but a steady stream of them slows an export down
# (one chunk a second at most) rather than stopping it.
GIVE_WAY_SECONDS = 1.0


def _text_columns(qs: QuerySet) -> QuerySet:
    """``qs`` with the JSON and time columns as PostgreSQL's text (``_ANNOTATIONS``)."""
    return qs.annotate(
        **{name: RawSQL(sql, [], output_field=TextField()) for name, sql in _ANNOTATIONS.items()}
    )


def _keyset_chunks(qs: QuerySet, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of up to ``chunk_rows`` rows as ``_line_sql`` writes them. Before
    each read after the first, the export waits while other requests of the
    server are in flight (``foreground.wait_for_quiet``): the chunk's query would
    take a core of PostgreSQL's for tens of milliseconds from them."""
    columns = _text_columns(qs)
    refs = _walks(columns)
    if refs == []:
        return  # no tenant can match
    first = _chunk_sql(columns, chunk_rows, refs)
    rest = None
    cursor = None
    while True:
        if cursor is None:
            sql, params = first
        else:
            foreground.wait_for_quiet(GIVE_WAY_SECONDS)
            rest = rest or _chunk_sql(
                after_cursor(columns, Cursor(_AT_TIME, _AT_ID)), chunk_rows, refs
            )
            sql, template = rest
            params = _range_params(template, cursor, None)
        records, rows, last_time, last_id = _fetch_chunk(qs.db, _line_sql(sql), params)
        if not rows:
            return
        last = Cursor(created_at=last_time, id=last_id.decode())
        yield Chunk(
            records, rows, functools.partial(_python_range_bytes, columns, cursor, last), last
        )
        if rows < chunk_rows:
            return
        cursor = last


# --- Two chunks at once ---------------------------------------------------------
#
# One PostgreSQL backend writes a chunk's records in about the time the worker
# takes to check and quote the one before, so with one connection each side
# waits for the other now and then. With read-ahead, an export reads two chunks
# at once on two connections of its own (``_RangeReader``): the boundaries of the
# chunks come first, each from a cheap query (the position of the
# ``chunk_rows``-th row after the last boundary: the same walk, no column
# computed), then each chunk is the rows between two boundaries.

# The end of a chunk's range in its compiled SQL (``_AT_TIME``/``_AT_ID`` are
# its start).
_TO_TIME = datetime(2000, 1, 1, 0, 0, 0, 654321, tzinfo=UTC)
_TO_ID = "\x1fkeyset-end\x1f"
# A range holds ``chunk_rows`` rows unless entries were written into it after its
# end was found (a replay of old entries): one read takes up to twice that, and
# ``_python_range`` any rest.
_RANGE_LIMIT = 2


def _up_to(qs: QuerySet, last: Cursor) -> QuerySet:
    """Rows at or before ``last`` in (created_at desc, id desc) order."""
    return qs.filter(created_at__gte=last.created_at).filter(
        Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gte=last.id)
    )


def _range_params(template: list, start: Cursor | None, end: Cursor | None) -> list:
    """The compiled SQL's parameters with the stand-ins for the range's ends replaced."""
    stand_ins = {(_AT_TIME, _AT_ID): start, (_TO_TIME, _TO_ID): end}
    params = []
    for param in template:
        for (at_time, at_id), cursor in stand_ins.items():
            if isinstance(param, datetime) and param == at_time:
                param = cursor.created_at
            elif isinstance(param, str) and param == at_id:
                param = cursor.id
        params.append(param)
    return params


def _end_sql(page: QuerySet, size: int, refs: list[str | None] | None) -> tuple[str, list]:
    """SQL of the id and createdAt of the ``size``-th row of ``page`` (none if fewer)."""
    values = page.values_list("id", "created_at")
    if refs is not None and len(refs) > 1:
        sql, params = merged_sql(values, refs, size)
        return f"SELECT * FROM ({sql}) AS walk ORDER BY 2 DESC, 1 DESC OFFSET {size - 1}", params
    if refs:
        values = values.filter(tenant_id=refs[0])
    sql, params = values[size - 1 : size].query.get_compiler(values.db).as_sql()
    return sql, list(params)


def _ranged_chunks(qs: QuerySet, chunk_rows: int) -> Iterator[Chunk]:
    """The chunks of ``_keyset_chunks``, two read at once (``_RangeReader``); the
    boundaries are found on this thread's connection. Before each chunk after the
    first, the export gives way to the server's other requests."""
    columns = _text_columns(qs)
    refs = _walks(columns)
    if refs == []:
        return  # no tenant can match
    start_at, end_at = Cursor(_AT_TIME, _AT_ID), Cursor(_TO_TIME, _TO_ID)
    limit = chunk_rows * _RANGE_LIMIT
    pages = {True: columns, False: after_cursor(columns, start_at)}  # by "first range"
    ends = {first: _end_sql(page, chunk_rows, refs) for first, page in pages.items()}
    reads = {
        (first, bounded): _chunk_sql(_up_to(page, end_at) if bounded else page, limit, refs)
        for first, page in pages.items()
        for bounded in (True, False)
    }
    reader = _RangeReader(qs.db)
    pending: collections.deque = collections.deque()
    try:
        start: Cursor | None = None
        while True:
            if start is not None:
                foreground.wait_for_quiet(GIVE_WAY_SECONDS)
            sql, template = ends[start is None]
            with connections[qs.db].cursor() as cursor:
                cursor.execute(sql, _range_params(template, start, None))
                found = cursor.fetchone()
            end = None if found is None else Cursor(created_at=found[1], id=found[0])
            sql, template = reads[(start is None, end is not None)]
            read = reader.submit(_line_sql(sql), _range_params(template, start, end))
            pending.append((start, end, read))
            # One range is read while the next one is; the last one (no end) alone.
            while len(pending) > (0 if end is None else 1):
                chunk = None
                for chunk in _range_chunks(columns, limit, *pending.popleft()):
                    yield chunk
            if end is not None:
                start = end
                continue
            if chunk is None or chunk.rows < limit:
                return
            start = chunk.last  # the open last range held more than one read takes
    finally:
        reader.close()


def _range_chunks(
    columns: QuerySet, limit: int, start: Cursor | None, end: Cursor | None, read: Future
) -> Iterator[Chunk]:
    """The chunk of one range's read; and the rest of a bounded range that held
    more rows than one read takes."""
    records, rows, last_time, last_id = read.result()
    if not rows:
        return
    last = Cursor(created_at=last_time, id=last_id.decode())
    yield Chunk(records, rows, functools.partial(_python_range_bytes, columns, start, last), last)
    if end is not None and rows == limit and last != end:
        written, rest = _python_range(columns, last, end)
        yield Chunk(b"", rest, lambda: written, end, written=written)


# A range's rows are read by a bitmap scan: its heap pages in the table's order,
# prefetched, then sorted (5,000 rows: ~1 µs a row of PostgreSQL's). An index
# walk newest first reads the table backwards one page at a time, which the
# kernel does not read ahead: from a cold disk the first 1.5M rows of the super
# admin's export came at 92,785 rows/s that way and at 134,277 this way, and at
# the same rate once cached (bench/NOTES.md).
_RANGE_SETTINGS = ("SET enable_indexscan = off", "SET effective_io_concurrency = 32")


class _RangeReader:
    """Reads chunks on two threads, each query on one of two connections of the
    export's own (opened as needed, closed by ``close``), at lower priority."""

    def __init__(self, db: str):
        self.params = connections[db].get_connection_params()
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        self.opened: list[psycopg.Connection] = []
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(
            max_workers=2,
            thread_name_prefix="export-range",
            initializer=readahead.lower_priority,
            initargs=(EXPORT_NICE,),
        )

    def submit(self, sql: str, params: list) -> Future:
        # In a copy of the caller's context: its trace and log context carry over.
        return self.pool.submit(contextvars.copy_context().run, self._read, sql, params)

    def _read(self, sql: str, params: list) -> tuple:
        try:
            connection = self.free.get_nowait()
        except queue.Empty:
            connection = psycopg.connect(**self.params, autocommit=True)
            for setting in _RANGE_SETTINGS:
                connection.execute(setting)
            with self.lock:
                self.opened.append(connection)
        try:
            return _fetch_on(connection, sql, params)
        finally:
            self.free.put(connection)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            for connection in self.opened:
                connection.close()


# Above this share of audit_logs (the planner's estimate), a scope of several
# tenants is read in one walk of audit_created_idx that skips the other tenants'
# rows, not merged from one walk per tenant: at 1M entries a row of the 50-branch
# merge cost PostgreSQL ~7.5 µs, of the one walk ~2.5 (its reads of the table
# follow the time order; the merge's jump between tenants), so the walk is
# cheaper while the scope holds more than about a fifth of the table.
WALK_ALL_SHARE = 0.25


def _walks(qs: QuerySet) -> list[str | None] | None:
    """The tenants to merge one walk each for (``tenant_branches``), or None for
    one walk of the whole scope; [] when no tenant can match."""
    refs = tenant_branches(qs)
    if refs is None or len(refs) < 2:
        return refs
    if _share_of_table(qs) >= WALK_ALL_SHARE:
        return None
    return refs


def _share_of_table(qs: QuerySet) -> float:
    """The planner's estimate of the part of the table ``qs`` holds (0 when unknown)."""
    sql, params = qs.order_by().values("pk").query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (plan,) = cursor.fetchone()
        rows = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"]
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table]
        )
        (total,) = cursor.fetchone()
    return rows / total if total and total > 0 else 0.0


def _chunk_sql(page: QuerySet, size: int, refs: list[str | None] | None) -> tuple[str, list]:
    """SQL and parameters of the first ``size`` rows of ``page`` (the text fields
    in STORED_NAMES order, then the stored time): one index walk, or one per
    tenant of ``refs`` merged (``merged_sql``). ``_line_sql`` writes their records."""
    # The last value, the stored time, is the keyset position (and the merge's key).
    values = page.values_list(*_TEXT_FIELDS, "created_at")
    if refs is not None and len(refs) > 1:
        sql, params = merged_sql(values, refs, size)
    else:
        if refs:
            values = values.filter(tenant_id=refs[0])
        sql, params = values[:size].query.get_compiler(values.db).as_sql()
    return sql, list(params)


def _python_range(columns: QuerySet, after: Cursor | None, last: Cursor) -> tuple[bytes, int]:
    """The rows of ``columns`` after ``after`` up to ``last`` (a chunk's range, newest
    first) written by ``_line``, and their count: for a chunk one of whose cells
    holds a mark."""
    if after is not None:
        columns = after_cursor(columns, after)
    rows = _up_to(columns, last).order_by("-created_at", "-id").values_list(*_TEXT_FIELDS)
    lines = [_line(row) for row in rows]
    return "".join(lines).encode(), len(lines)


def _python_range_bytes(columns: QuerySet, after: Cursor | None, last: Cursor) -> bytes:
    return _python_range(columns, after, last)[0]


class _BytesLoader(Loader):
    """A text value as its bytes (UTF-8, the connection's encoding): the chunk is
    written to the socket as it came, never decoded and encoded again."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _fetch_chunk(db: str, sql: str, params: list) -> tuple:
    """The one row of ``sql`` (``_line_sql``) on this thread's connection (``_fetch_on``)."""
    connection = connections[db]
    connection.ensure_connection()
    return _fetch_on(connection.connection, sql, params)


def _fetch_on(connection: psycopg.Connection, sql: str, params: list) -> tuple:
    """The one row of ``sql`` (``_line_sql``), in binary: texts as bytes.

    The SQL goes with PostgreSQL's own ``$n`` placeholders (a raw cursor): psycopg
    caches its conversion of ``%s`` only for short statements, and re-parsing the
    50-branch merge for every chunk cost ~14 µs a row.
    """
    with RawCursor(connection) as cursor:
        cursor.adapters.register_loader("text", _BytesLoader)
        # Prepared: every chunk after the first runs the same statement, and
        # planning a 50-branch merge took ~75 ms (15 µs a row) each time.
        cursor.execute(_dollar_placeholders(sql), params, prepare=True, binary=True)
        return cursor.fetchone()


@functools.lru_cache(maxsize=32)
def _dollar_placeholders(sql: str) -> str:
    """Django's ``%s`` placeholders as ``$1, $2, ...`` (and ``%%`` as ``%``)."""
    numbers = itertools.count(1)
    return re.sub(r"%[s%]", lambda m: "%" if m[0] == "%%" else f"${next(numbers)}", sql)


def merged_sql(values: QuerySet, refs: list[str | None], size: int) -> tuple[str, list]:
    """The first ``size`` rows of ``values`` (newest first), one index walk per tenant
    of ``refs``, merged by PostgreSQL.

    Django writes a union as ``(a) UNION ALL (b) ORDER BY .. LIMIT``: PostgreSQL
    then reads every branch up to its own limit, computes each row's text
    columns and sorts them all: 50 tenants cost 50 times the rows of the chunk
    (a 50-tenant Portal export ran at a few hundred rows/s). As a subquery in
    FROM, the same union becomes a Merge Append that pulls from the per-tenant
    walks in order and stops at ``size`` rows. ``values`` starts with ``id`` and
    ends with ``created_at``: the merge key.
    """
    parts, params = [], []
    for ref in refs:
        sql, branch_params = (
            values.filter(tenant_id=ref)[:size].query.get_compiler(values.db).as_sql()
        )
        parts.append(f"({sql})")
        params.extend(branch_params)
    # By position: the first and the last selected column.
    last = len(values._fields)
    sql = (
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS merged "
        f"ORDER BY {last} DESC, 1 DESC LIMIT {int(size)}"
    )
    return sql, params


# Niceness added to an export's helper threads: the request threads of the same
# worker come first (dmobs.readahead.lower_priority).
EXPORT_NICE = 10
