"""Hashed entries read from the audit store, for the sealer and the verifier.

Every source yields ``(id, tenant, createdAt, entry hash)`` in
``(createdAt, id)`` order; ``tenant`` is the entry's tenantId, ``""`` for a
platform entry (its group in a digest). ``tenant`` arguments: ``None`` for
every entry, ``""`` for platform entries only, else one tenantId.

``DjangoSource`` reads through the ORM (SQLite, MongoDB). ``PostgresSource``
reads keyset chunks with SQL that hands Python the canonical text around the
states, the states as jsonb text and ``createdAt`` already as text, so Python
only looks up state hashes and hashes (the cost the benchmark measures).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import NamedTuple

from django.conf import settings
from django.db import connections
from django.db.models import Q

from dmobs.integrity.canonical import (
    FORMAT,
    STATE_HASH_JSON,
    canonical_state,
    canonical_text,
    format_created,
    hash_text,
    state_hash,
    state_hash_json_of_text,
    value_text,
)
from dmobs.models import AuditLog
from dmobs.readahead import read_ahead

Hashed = tuple[str, str, datetime, str]


def store_hash_of(line_hashes: Iterable[bytes]) -> str:
    """A block's store hash from its entries' line hashes, in seal order."""
    return hashlib.sha256(b"".join(line_hashes)).hexdigest()


class StoreHash(NamedTuple):
    hash: str
    count: int


CHUNK = 10_000
# The front of a line's array, ``[traceId, id, tenantId, ``, when no escape is in it.
_FRONT = re.compile(r'\[(null|"[^"\\]*"),"([^"\\]*)",(?:null|"([^"\\]*)"),').match

_VALUES = (
    "id",
    "tenant_id",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "resource_type",
    "resource_id",
    "resource_name",
    "description",
    "before",
    "after",
    "trace_id",
    "created_at",
)


def tenant_q(tenant: str | None) -> Q:
    if tenant is None:
        return Q()
    if tenant == "":
        return Q(tenant_id__isnull=True) | Q(tenant_id="")
    return Q(tenant_id=tenant)


def hash_values(row: tuple) -> Hashed:
    """A row of ``_VALUES`` (JSON values, a datetime) to its hashed form."""
    (eid, tenant, at, aid, an, act, rt, rid, rn, desc, before, after, trace, created) = row
    text = canonical_text(
        str(eid),
        tenant,
        at,
        aid,
        an,
        act,
        rt,
        rid,
        rn,
        desc,
        state_hash(canonical_state(before)),
        state_hash(canonical_state(after)),
        trace,
        format_created(created),
    )
    return str(eid), tenant or "", created, hash_text(text)


class DjangoSource:
    def __init__(self, alias: str | None = None):
        self.alias = alias or settings.AUDIT_DB_ALIAS

    def _qs(self):
        return AuditLog.objects.using(self.alias)

    def _range(self, after: datetime | None, through: datetime | None, tenant: str | None):
        qs = self._qs().filter(tenant_q(tenant))
        if after is not None:
            qs = qs.filter(created_at__gt=after)
        if through is not None:
            qs = qs.filter(created_at__lte=through)
        return qs

    def hashed_between(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> Iterator[Hashed]:
        qs = self._range(after, through, tenant).order_by("created_at", "id")
        for row in qs.values_list(*_VALUES).iterator(chunk_size=2000):
            yield hash_values(row)

    def hashed_by_ids(self, ids: Iterable[str], *, tenant: str | None = None) -> Iterator[Hashed]:
        ids = list(ids)
        for start in range(0, len(ids), 1000):
            qs = self._qs().filter(tenant_q(tenant), id__in=ids[start : start + 1000])
            for row in qs.order_by("created_at", "id").values_list(*_VALUES):
                yield hash_values(row)

    def ids_between(self, after: datetime | None, through: datetime | None) -> Iterator[str]:
        qs = self._range(after, through, None).order_by("created_at", "id")
        for eid in qs.values_list("id", flat=True).iterator(chunk_size=5000):
            yield str(eid)

    def count(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> int:
        return self._range(after, through, tenant).count()


class PostgresSource(DjangoSource):
    r"""The same results as ``DjangoSource``, the work shared with PostgreSQL.

    PostgreSQL writes each entry's canonical form around the two state hashes,
    on its own core: ``traceId`` and the ten values before the states with one
    ``array_to_json`` (``to_json`` escapes a string exactly as Python's
    ``json.dumps(..., ensure_ascii=False)`` does: ``"``, ``\``, ``\b\f\n\r\t``
    and other control characters as ``\u00xx``; an array's separator is
    ``,``), the states as jsonb text, and the exact ``createdAt`` once (its
    canonical millisecond text is a slice of it). A chunk's lines come as one
    text (``string_agg``): the driver decodes one value per chunk, not fifteen
    per entry. Python cuts traceId, id and tenantId off the array's front,
    looks the state hashes up by their text (``STATE_HASH_JSON``: most states
    repeat), puts the canonical form together and runs one SHA-256 per entry.

    Tried and not taken: PostgreSQL hashing the whole entry (``sha256`` in C)
    with the distinct states of a chunk hashed by us and sent back to be
    joined: the states repeat less within a chunk than across the log (8,000
    distinct in 10,000 entries of the benchmark), and sending them back and
    joining them cost PostgreSQL more than writing them as text (bench/NOTES.md).
    """

    def _rows(self, where: str, order_limit: str = "") -> str:
        """The entries of a chunk as a subquery (aliased ``e``)."""
        table = connections[self.alias].ops.quote_name(AuditLog._meta.db_table)
        return f"(SELECT * FROM {table} WHERE {where}{order_limit}) AS e"

    def _line(self) -> str:
        """SQL: one text line per entry of ``e``, tab-separated: the exact
        createdAt (UTC); traceId and the canonical form's values before the
        states (id first) as one JSON array; the two states as jsonb text
        (empty for none: JSON text is never empty). No value holds a raw tab or
        newline (JSON escapes control characters), so lines split safely.

        A line is so an injective text of every stored column, in UTC and
        whatever the session's settings: the store hash (``store_hash``,
        ``sealed_between``) is made of it. Digests name it
        ``STORE_HASH_KIND``: a change to this text needs a new kind (digests
        of the old one would then be checked entry by entry)."""
        quote = connections[self.alias].ops.quote_name
        meta = AuditLog._meta

        def column(name: str) -> str:
            return f"e.{quote(meta.get_field(name).column)}"

        values = ", ".join(f"{column(name)}::text" for name in ("trace_id", *_VALUES[:10]))
        return " || E'\\t' || ".join(
            [
                f"to_char({column('created_at')} AT TIME ZONE 'UTC', "
                """'YYYY-MM-DD"T"HH24:MI:SS.US')""",
                f"array_to_json(ARRAY[{values}])::text",
                f"coalesce({column('before')}::text, '')",
                f"coalesce({column('after')}::text, '')",
            ]
        )

    def _lines(self, rows: str, params: list) -> list[str]:
        """The lines of ``rows`` in (createdAt, id) order, fetched as one text."""
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                f"SELECT string_agg({self._line()}, E'\\n' ORDER BY e.\"createdAt\", e.id) "
                f"FROM {rows}",
                params,
            )
            (text,) = cursor.fetchone()
        return text.split("\n") if text else []

    @staticmethod
    def _leading(values: str) -> tuple[str, str, str, int]:
        """traceId (as JSON), id and tenant ("" for none) from the front of a
        line's JSON array ``[traceId, id, tenantId, ...]``, and where id starts:
        matched when none of them holds an escape, else decoded."""
        front = _FRONT(values)
        if front is not None:
            trace, eid, tenant = front.groups()
            return trace, eid, tenant or "", len(trace) + 2
        trace_value, eid, tenant = json.loads(values)[:3]
        trace = value_text(trace_value)
        return trace, eid, tenant or "", len(trace) + 2

    @classmethod
    def _hashes(cls, lines: list[str]) -> Iterator[tuple[str, str, str, str]]:
        """(id, tenant, exact createdAt text, entry hash) of each line."""
        cached, state = STATE_HASH_JSON.get, state_hash_json_of_text
        sha = hashlib.sha256
        leading = cls._leading
        prefix = f'["{FORMAT}",'
        for line in lines:
            exact, values, before, after = line.split("\t")
            trace, eid, tenant, start = leading(values)
            b = cached(before) or state(before)
            a = cached(after) or state(after)
            text = f'{prefix}{values[start:-1]},{b},{a},{trace},"{exact[:-3]}Z"]'
            yield eid, tenant, exact, sha(text.encode()).hexdigest()

    @classmethod
    def _hashed(cls, lines: list[str]) -> Iterator[Hashed]:
        parse_time = datetime.fromisoformat
        for eid, tenant, exact, entry_hash in cls._hashes(lines):
            yield eid, tenant, parse_time(f"{exact}+00:00"), entry_hash

    def _tenant_sql(self, tenant: str | None) -> tuple[str, list]:
        if tenant is None:
            return "", []
        if tenant == "":
            return ' AND ("tenantId" IS NULL OR "tenantId" = \'\')', []
        return ' AND "tenantId" = %s', [tenant]

    def _range_sql(
        self, after: datetime | None, through: datetime | None, tenant: str | None
    ) -> tuple[str, list]:
        where, params = ["TRUE"], []
        if after is not None:
            where.append('"createdAt" > %s')
            params.append(after)
        if through is not None:
            where.append('"createdAt" <= %s')
            params.append(through)
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        return " AND ".join(where) + tenant_sql, params + tenant_params

    def _chunks(
        self, after: datetime | None, through: datetime | None, tenant: str | None
    ) -> Iterator[list[str]]:
        """Keyset chunks of lines, oldest first."""
        key: tuple[datetime, str] | None = None
        while True:
            if key is None:
                where, params = self._range_sql(after, through, tenant)
            else:
                where, params = self._range_sql(None, through, tenant)
                where = f'("createdAt", id) > (%s, %s) AND {where}'
                params = [*key, *params]
            lines = self._lines(
                self._rows(where, f' ORDER BY "createdAt", id LIMIT {CHUNK}'), params
            )
            if lines:
                yield lines
            if len(lines) < CHUNK:
                return
            exact, values, _states = lines[-1].split("\t", 2)
            key = (datetime.fromisoformat(exact).replace(tzinfo=UTC), self._leading(values)[1])

    def hashed_between(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> Iterator[Hashed]:
        for lines in self._read(after, through, tenant):
            yield from self._hashed(lines)

    def _read(
        self, after: datetime | None, through: datetime | None, tenant: str | None
    ) -> Iterator[list[str]]:
        chunks = self._chunks(after, through, tenant)
        if not connections[self.alias].in_atomic_block:
            # PostgreSQL prepares the next chunks while this thread hashes the
            # current one (a transaction's view cannot be shared: not inside
            # one). Several: the sealer stops at each block to write its digest
            # (~1 MB of lists, committed: ~50 ms), and the database should not.
            chunks = read_ahead(chunks, name="integrity-read-ahead", ahead=3)
        return chunks

    def leaf_ranges(
        self, ranges: list[tuple[datetime | None, datetime]], *, tenant: str | None = None
    ) -> Iterator[tuple[str, int]]:
        """For each range in turn, its entries as a digest lists them
        (``lines_for(tenant)``: ``"<id> <hash>\n"`` by tenant in code point
        order, each tenant's in seal order) and their number; the next range
        read ahead while this one is hashed (the verifier's blocks)."""

        def lines_of_ranges() -> Iterator[list[str]]:
            for lower, upper in ranges:
                lines: list[str] = []
                for chunk in self._chunks(lower, upper, tenant):
                    lines += chunk
                yield lines

        ranged = lines_of_ranges()
        if not connections[self.alias].in_atomic_block:
            ranged = read_ahead(ranged, name="integrity-read-ahead")
        for lines in ranged:
            groups: dict[str, list[str]] = {}
            for eid, entry_tenant, _exact, entry_hash in self._hashes(lines):
                group = groups.get(entry_tenant)
                if group is None:
                    group = groups[entry_tenant] = []
                group.append(f"{eid} {entry_hash}\n")
            yield "".join("".join(groups[t]) for t in sorted(groups)), len(lines)

    def store_hash(self, after: datetime | None, through: datetime) -> StoreHash:
        """The store hash of every entry with ``after < createdAt <= through``
        (all tenants) and their number, as PostgreSQL alone computes it (no
        entry comes to Python): the SHA-256 of each entry's line (``_line``), joined in
        (createdAt, id) order, hashed (``store_hash_of``). What the sealer
        computed from the same lines, when nothing changed."""
        where, params = self._range_sql(after, through, None)
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                "SELECT encode(sha256(coalesce(string_agg("
                f"sha256(convert_to({self._line()}, 'UTF8')), '' "
                "ORDER BY e.\"createdAt\", e.id), '')), 'hex'), count(*) "
                f"FROM {self._rows(where)}",
                params,
            )
            return StoreHash(*cursor.fetchone())

    def sealed_between(
        self, after: datetime | None, through: datetime | None
    ) -> Iterator[tuple[Hashed, bytes]]:
        """``hashed_between`` for the sealer (all tenants), each entry with
        the SHA-256 of its line: a block's ``store_hash_of`` these is what
        ``store_hash`` gives for its range while the block is unchanged."""
        sha = hashlib.sha256
        for lines in self._read(after, through, None):
            for line, hashed in zip(lines, self._hashed(lines), strict=True):
                yield hashed, sha(line.encode()).digest()

    def hashed_by_ids(self, ids: Iterable[str], *, tenant: str | None = None) -> Iterator[Hashed]:
        ids = list(ids)
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        for start in range(0, len(ids), 5000):
            rows = self._rows(f"id = ANY(%s){tenant_sql}")
            yield from self._hashed(self._lines(rows, [ids[start : start + 5000], *tenant_params]))


def source_for(alias: str | None = None) -> DjangoSource:
    alias = alias or settings.AUDIT_DB_ALIAS
    if connections[alias].vendor == "postgresql":
        return PostgresSource(alias)
    return DjangoSource(alias)
