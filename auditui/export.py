"""CSV export at database speed (PostgreSQL).

The generic export (``views.csv_lines``) builds a model instance, a record
dict and a CSV line per entry: about 20,000 rows/s on these machines. Here the
per-row work is moved where it is cheapest:

1. PostgreSQL reads keyset chunks of ``CHUNK_ROWS`` and writes each row's CSV
   record itself (``_line_sql``): ``createdAt`` as ISO-8601 (ms, ``Z``), the JSON
   columns as their jsonb text, every cell guarded against spreadsheet formulas
   and quoted, in C, on the database's own core. It also sends the JSON texts
   of ``before``/``after`` that are objects or arrays (only those can hold a key).
2. Python checks those texts for secrets, a whole chunk at a time at C speed
   (``_rows_to_mask``), and passes PostgreSQL's records through untouched. The
   check may only skip a text ``dmobs.vocabulary`` would leave alone: in a text of
   plain ASCII with no backslash every key is written as it decodes, so its
   skeleton is the lower-cased letters and digits and leaves a secret name in
   the whole text's; any escape (``pass\nword``) or other script (``pаssword``)
   flags the text. A flagged row's record is rebuilt in Python with its JSON
   cells made by ``_json_cell``, i.e. masked by ``dmobs.vocabulary`` (``_masked_line``:
   the bytes the all-Python ``_line`` gives), in its place in the chunk.
3. One string per chunk is streamed, so the server writes ~2.6 MB at a time.

The CSV carries the same columns and cells as the generic export, except that
JSON cells are PostgreSQL's canonical jsonb text (``{"a": 1}``) rather than
Python's compact one, and every cell is quoted. Whether a record was written by
PostgreSQL or by Python, its bytes are the same (tests/auditui/test_export_chunks.py).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import operator
import re
from collections.abc import Iterator
from datetime import UTC, datetime

from django.db import connections
from django.db.models import QuerySet, TextField
from django.db.models.expressions import RawSQL
from psycopg import RawCursor
from psycopg.types.string import TextLoader

from auditui import stored
from auditui.paging import Cursor, after_cursor, tenant_branches
from dmobs import readahead
from dmobs.records import FIELDS as RECORD_FIELDS
from dmobs.records import STORED_NAMES
from dmobs.vocabulary import CSV_TRIGGERS, SECRET_KEY_PARTS, TOKEN_COUNT_SUFFIX

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
        # auditui.stored: any depth (json.loads/mask_secrets recurse).
        text = stored.dumps(stored.masked(stored.loads(text)), separators=stored.SPACED)
    return "'" + text if text.startswith(CSV_TRIGGERS) else text


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
# fields in STORED_NAMES order and then the stored time; the outer query below
# names them c0 .. c14 and writes each row's record exactly as ``_line`` would for
# texts that need no masking: formula guard, doubled quotes, every cell quoted,
# CRLF. Beside the record it sends the before/after texts that are JSON objects
# or arrays ('' otherwise: only those can hold a key) and the keyset position.

_CREATED = len(_TEXT_FIELDS)  # c14: the stored createdAt (timestamptz), the position
_TRIGGER_CODES = ", ".join(str(ord(ch)) for ch in CSV_TRIGGERS)
_OBJECT_OR_ARRAY = f"{ord('{')}, {ord('[')}"
_QUOTE = ord('"')


def _sql_cell(value: str) -> str:
    """SQL of one quoted CSV cell of the text ``value`` (never NULL)."""
    guard = f"ascii({value}) IN ({_TRIGGER_CODES})"
    guarded = f"CASE WHEN {guard} THEN '''' || {value} ELSE {value} END"
    return f"""'"' || replace({guarded}, '"', '""') || '"'"""


def _sql_json_value(text: str) -> str:
    """SQL of ``_json_cell``'s value for a JSON text that needs no masking: a JSON
    string decoded, true/false/null as Python shows them, anything else as is."""
    literals = " ".join(
        f"WHEN {text} = '{literal}' THEN '{shown}'" for literal, shown in _JSON_LITERALS.items()
    )
    return (
        f"(CASE WHEN {text} IS NULL THEN '' WHEN ascii({text}) = {_QUOTE} "
        f"THEN ({text}::jsonb #>> '{{}}') {literals} ELSE {text} END)"
    )


def _line_sql(chunk_sql: str) -> str:
    """The chunk's rows as (record, before text, after text, createdAt, id)."""
    cells = []
    for index in range(len(_TEXT_FIELDS)):
        column = f"c{index}"
        if index in (BEFORE, AFTER):
            cells.append(_sql_cell(_sql_json_value(column)))
        else:
            cells.append(_sql_cell(f"coalesce({column}, '')"))
    record = " || ',' || ".join(cells) + " || E'\\r\\n'"
    checked = ", ".join(
        f"CASE WHEN ascii(c{i}) IN ({_OBJECT_OR_ARRAY}) THEN c{i} ELSE '' END"
        for i in (BEFORE, AFTER)
    )
    names = ", ".join(f"c{i}" for i in range(_CREATED + 1))
    return (
        f"SELECT {record}, {checked}, c{_CREATED}, c0 FROM ({chunk_sql}) AS c({names}) "
        f"ORDER BY c{_CREATED} DESC, c0 DESC"
    )


# The skeleton of a whole chunk's texts at once: the translation keeps NUL,
# which joins the texts and cannot occur in one (jsonb refuses \u0000 and
# escapes the other control characters), so a secret name never spans two texts
# and the NULs before a hit count the texts before its own.
_DELETE_BUT_NUL = _DELETE.replace(b"\x00", b"")
_SECRET_NAMES = tuple(part.encode() for part in SECRET_KEY_PARTS)
_CHECKED = operator.itemgetter(1, 2)


def _rows_to_mask(rows: list[tuple]) -> list[int]:
    """Indexes of the rows whose before or after text ``_may_hold_secret`` flags:
    the same steps over the whole chunk, a handful of C calls instead of several
    per row (it may flag more rows, never fewer)."""
    texts = "\x00".join(itertools.chain.from_iterable(map(_CHECKED, rows)))
    flagged = set()
    if "\\" in texts or not texts.isascii():
        for index, text in enumerate(texts.split("\x00")):
            if "\\" in text or not text.isascii():
                flagged.add(index // 2)
    lowered = texts.lower()
    if TOKEN_COUNT_SUFFIX in lowered:
        lowered = _TOKEN_COUNT.sub("", lowered)
    skeleton = lowered.encode("ascii", "ignore").translate(None, _DELETE_BUT_NUL)
    hits = []
    for name in _SECRET_NAMES:
        at = skeleton.find(name)
        while at >= 0:
            hits.append(at)
            end = skeleton.find(b"\x00", at)  # on to the next text
            at = -1 if end < 0 else skeleton.find(name, end)
    hits.sort()
    text, counted = 0, 0
    for at in hits:
        text += skeleton.count(b"\x00", counted, at)
        counted = at
        flagged.add(text // 2)
    return sorted(flagged)


def _masked_line(row: tuple) -> str:
    """The row's record with its JSON cells made by ``_json_cell`` (masked by
    ``dmobs.vocabulary``) and the other cells as PostgreSQL wrote them: the bytes
    ``_line`` gives for the stored row."""
    cells = next(csv.reader([row[0]]))
    for index, text in ((BEFORE, row[1]), (AFTER, row[2])):
        if text:
            cells[index] = _json_cell(text)
    return '"' + '","'.join([cell.replace('"', '""') for cell in cells]) + '"\r\n'


def _chunk_text(rows: list[tuple]) -> str:
    """One chunk's CSV: PostgreSQL's records, the flagged ones rebuilt in place."""
    lines = [row[0] for row in rows]
    for index in _rows_to_mask(rows):
        lines[index] = _masked_line(rows[index])
    return "".join(lines)


def csv_chunks(
    qs: QuerySet, *, chunk_rows: int = CHUNK_ROWS, read_ahead: bool | None = None
) -> Iterator[str]:
    """The header, then one CSV string per keyset chunk of ``qs`` (newest first).

    With ``read_ahead`` (the default outside a transaction) a helper thread reads
    the next chunk on its own connection while this one formats the current one,
    so the database's time per row overlaps with Python's instead of adding to it.
    Inside a transaction the chunks are read here, where that transaction's view
    of the data is.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(STORED_NAMES)
    yield buffer.getvalue()
    chunks = _keyset_chunks(qs, chunk_rows)
    if read_ahead is None:
        read_ahead = not connections[qs.db].in_atomic_block
    if not read_ahead:
        yield from _formatted(chunks)
        return
    # Two helper threads of lower CPU priority: one reads, one formats; the
    # request's own thread only writes to the socket. An export is bulk work:
    # on a busy machine the screens' requests in the same worker come first.
    yield from readahead.read_ahead(
        _formatted(readahead.read_ahead(chunks, name="export-read-ahead", nice=EXPORT_NICE)),
        name="export-format",
        nice=EXPORT_NICE,
    )


def _formatted(chunks: Iterator[list[tuple]]) -> Iterator[str]:
    try:
        for rows in chunks:
            yield _chunk_text(rows)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # stops a read-ahead thread behind it


# The position after which a chunk starts, in the compiled SQL of a chunk: the
# SQL is compiled once per export with these stand-ins and each chunk swaps in
# its own values (compiling 50 tenant branches per chunk cost ~25 µs a row).
_AT_TIME = datetime(2000, 1, 1, 0, 0, 0, 123457, tzinfo=UTC)
_AT_ID = "\x1fkeyset-id\x1f"


def _keyset_chunks(qs: QuerySet, chunk_rows: int) -> Iterator[list[tuple]]:
    """Chunks of ``chunk_rows`` rows as ``_line_sql`` selects them: the record,
    the JSON texts to check, and the position (``createdAt`` as PostgreSQL's
    text, only the last row's parsed, and the id)."""
    columns = qs.annotate(
        **{name: RawSQL(sql, [], output_field=TextField()) for name, sql in _ANNOTATIONS.items()}
    )
    refs = _walks(columns)
    if refs == []:
        return  # no tenant can match
    first = _chunk_sql(columns, chunk_rows + 1, refs)
    rest = None
    cursor = None
    while True:
        if cursor is None:
            sql, params = first
        else:
            rest = rest or _chunk_sql(
                after_cursor(columns, Cursor(_AT_TIME, _AT_ID)), chunk_rows + 1, refs
            )
            sql, template = rest
            params = [_position_value(p, cursor) for p in template]
        rows = _fetch_text(qs.db, sql, params)
        more = len(rows) > chunk_rows
        rows = rows[:chunk_rows]
        if not rows:
            return
        yield rows
        if not more:
            return
        last = rows[-1]
        cursor = Cursor(created_at=datetime.fromisoformat(last[-2]), id=last[-1])


def _position_value(param: object, cursor: Cursor) -> object:
    if isinstance(param, datetime) and param == _AT_TIME:
        return cursor.created_at
    if isinstance(param, str) and param == _AT_ID:
        return cursor.id
    return param


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
    """SQL and parameters of the first ``size`` rows of ``page`` as ``_line_sql``
    selects them: one index walk, or one per tenant of ``refs`` merged (``merged_sql``)."""
    # The last value, the stored time, is the keyset position (and the merge's key).
    values = page.values_list(*_TEXT_FIELDS, "created_at")
    if refs is not None and len(refs) > 1:
        sql, params = merged_sql(values, refs, size)
    else:
        if refs:
            values = values.filter(tenant_id=refs[0])
        sql, params = values[:size].query.get_compiler(values.db).as_sql()
    return _line_sql(sql), list(params)


def _fetch_text(db: str, sql: str, params: list) -> list[tuple]:
    """Rows of ``sql`` with timestamps left as PostgreSQL's text: parsing one per
    row in Python (with Django's time-zone loader) cost ~20 µs a row.

    The SQL goes with PostgreSQL's own ``$n`` placeholders (a raw cursor): psycopg
    caches its conversion of ``%s`` only for short statements, and re-parsing the
    50-branch merge for every chunk cost ~14 µs a row.
    """
    connection = connections[db]
    connection.ensure_connection()
    with RawCursor(connection.connection) as cursor:
        cursor.adapters.register_loader("timestamptz", TextLoader)
        # Prepared: every chunk after the first runs the same statement, and
        # planning a 50-branch merge took ~75 ms (15 µs a row) each time.
        cursor.execute(_dollar_placeholders(sql), params, prepare=True)
        return cursor.fetchall()


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
