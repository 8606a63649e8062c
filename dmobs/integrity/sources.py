"""Hashed entries read from the audit store, for the sealer and the verifier.

Every source yields ``(id, tenant, createdAt, entry hash)`` in
``(createdAt, id)`` order; ``tenant`` is the entry's tenantId, ``""`` for a
platform entry (its group in a digest). ``tenant`` arguments: ``None`` for
every entry, ``""`` for platform entries only, else one tenantId.

``DjangoSource`` reads through the ORM (SQLite, MongoDB) and hashes in Python.
``PostgresSource`` has PostgreSQL write and hash the canonical forms, Python
hashing only the distinct states (see its docstring; the cost the benchmark
measures).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.db import connections
from django.db.models import Q

from dmobs.integrity.canonical import (
    FORMAT,
    canonical_state,
    canonical_text,
    format_created,
    hash_text,
    state_hash,
    state_hash_of_text,
)
from dmobs.models import AuditLog
from dmobs.readahead import read_ahead

Hashed = tuple[str, str, datetime, str]
CHUNK = 10_000
_LONG_NUMBER = re.compile(r"\d{16}").search

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
    r"""The same results as ``DjangoSource``, with PostgreSQL computing the hashes.

    Per chunk of entries (a keyset chunk, a verifier's block, a list of ids):

    1. PostgreSQL returns the chunk's distinct states (``before``/``after``) as
       jsonb text, and Python hashes each one it has not seen
       (``state_hash_of_text``: parse, canonical JSON, SHA-256). States repeat a
       lot (a status, an agent's configuration), so few are new per chunk.
    2. Python sends them back with their hashes, and PostgreSQL writes each
       entry's canonical form and hashes it (``sha256`` in C): one
       ``array_to_json`` of the fourteen values after the format name
       (``to_json`` escapes a string exactly as Python's ``json.dumps(...,
       ensure_ascii=False)`` does: ``"``, ``\``, ``\b\f\n\r\t`` and other
       control characters as ``\u00xx``; and an array's separator is ``,``),
       ``createdAt`` with ``to_char``, the state hashes joined by jsonb
       equality (cheap: no state is written as text again). Equal jsonb values
       have one canonical form: strings compare byte for byte (the database's
       collation is deterministic), numbers by value (``1.0`` = ``1``, and the
       canonical form writes the value), keys are unique; except whole numbers
       from 2^53 up, whose states are looked up by their exact text instead
       (see ``_states``). A state that arrived between the two queries has no
       hash to join: the chunk is read again.

    So per entry our process does next to nothing: the verifier compares a
    block's ``"<id> <hash>\n"`` lines, as PostgreSQL joins them in the digest's
    order, with the digest's text (``leaf_ranges``); the sealer splits one
    short line per entry.
    """

    def _rows(self, where: str, order_limit: str = "") -> str:
        """The entries of a chunk as a subquery (aliased ``e``)."""
        table = connections[self.alias].ops.quote_name(AuditLog._meta.db_table)
        return f"(SELECT * FROM {table} WHERE {where}{order_limit}) AS e"

    def _entry_hash(self) -> str:
        """SQL: the hex entry hash of ``e`` with state hashes ``e.bh``, ``e.ah``."""
        quote = connections[self.alias].ops.quote_name
        meta = AuditLog._meta

        def column(name: str) -> str:
            return f"e.{quote(meta.get_field(name).column)}::text"

        created = f"e.{quote(meta.get_field('created_at').column)}"
        values = [
            *(column(name) for name in _VALUES[:10]),
            "e.bh",
            "e.ah",
            column("trace_id"),
            f"""to_char({created} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""",
        ]
        canonical = (
            f"""'["{FORMAT}",' || substr(array_to_json(ARRAY[{", ".join(values)}])::text, 2)"""
        )
        return f"encode(sha256(convert_to({canonical}, 'UTF8')), 'hex')"

    def _distinct_states(
        self, rows: str, params: list, among: list[str] | None = None
    ) -> list[str]:
        """The distinct states of ``rows`` as jsonb text: one per class of equal
        jsonb values, or with ``among`` (jsonb texts) every text of those classes."""
        distinct = "SELECT DISTINCT s" if among is None else "SELECT DISTINCT s::text"
        where = "s IS NOT NULL" if among is None else "s = ANY(%s::jsonb[])"
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                f"SELECT s::text FROM ({distinct} AS s FROM {rows} CROSS JOIN LATERAL "
                f"(VALUES (e.before), (e.after)) AS v(s) WHERE {where}) AS states",
                params if among is None else [*params, among],
            )
            return [text for (text,) in cursor.fetchall()]

    def _states(self, rows: str, params: list) -> tuple[list[str], list[str], dict[str, str]]:
        """Step 1: the state hashes of ``rows``, to be joined by jsonb equality
        (jsonb texts, hashes) or by exact text (a JSON object text -> hash).

        Equal jsonb values have one canonical form, except for whole numbers
        from 2^53 up, which the canonical form writes as integers or as doubles
        depending on the stored text (``10000000000000000`` or
        ``10000000000000000.0``: one value to jsonb). Their classes are looked
        up by text; jsonb writes numbers without exponents, so a run of 16
        digits in the class's text finds them all (and some that are not)."""
        texts = self._distinct_states(rows, params)
        joined: tuple[list[str], list[str]] = ([], [])
        by_text: dict[str, str] = {}
        exact = []
        for text in texts:
            if _LONG_NUMBER(text):
                exact.append(text)
            else:
                joined[0].append(text)
                joined[1].append(state_hash_of_text(text))
        if exact:
            for text in self._distinct_states(rows, params, exact):
                by_text[text] = state_hash_of_text(text)
        return joined[0], joined[1], by_text

    def _aggregate(self, rows: str, params: list, line: str, order: str) -> tuple[str, int]:
        """Step 2: ``line`` of every entry of ``rows`` joined in ``order`` (one
        text: the driver decodes one value per chunk, not one row per entry),
        and the number of entries."""
        for _attempt in range(5):
            texts, hashes, by_text = self._states(rows, params)
            by_text_json = json.dumps(by_text)
            with connections[self.alias].cursor() as cursor:
                cursor.execute(
                    "WITH st AS (SELECT * FROM unnest(%s::jsonb[], %s::text[]) AS st(state, hash)) "
                    f"SELECT string_agg({line}, '' ORDER BY {order}), count(*), count(*) FILTER "
                    "(WHERE (e.before IS NOT NULL AND e.bh IS NULL) "
                    "OR (e.after IS NOT NULL AND e.ah IS NULL)) "
                    "FROM (SELECT e.*, coalesce(sb.hash, %s::jsonb ->> e.before::text) AS bh, "
                    "coalesce(sa.hash, %s::jsonb ->> e.after::text) AS ah "
                    f"FROM {rows} LEFT JOIN st AS sb ON sb.state = e.before "
                    "LEFT JOIN st AS sa ON sa.state = e.after) AS e",
                    [texts, hashes, by_text_json, by_text_json, *params],
                )
                text, count, unhashed = cursor.fetchone()
            if not unhashed:
                return text or "", count
        raise RuntimeError("the audit entries kept changing while they were hashed")

    def _hashed_lines(self, rows: str, params: list) -> list[str]:
        """Tab-separated lines: id and tenantId as JSON (no raw tab or newline
        in them), the exact createdAt (UTC), the entry hash; (createdAt, id) order."""
        created = f"e.{connections[self.alias].ops.quote_name('createdAt')}"
        line = (
            "to_json(e.id)::text || E'\\t' || coalesce(to_json(e.\"tenantId\")::text, 'null') "
            f"|| E'\\t' || to_char({created} AT TIME ZONE 'UTC', "
            """'YYYY-MM-DD"T"HH24:MI:SS.US') || E'\\t' || """
            f"{self._entry_hash()} || E'\\n'"
        )
        text, _count = self._aggregate(rows, params, line, f"{created}, e.id")
        return text.split("\n")[:-1]

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

    @staticmethod
    def _hashed(lines: list[str]) -> Iterator[Hashed]:
        parse_time = datetime.fromisoformat
        loads = json.loads
        for line in lines:
            eid, tenant, exact, entry_hash = line.split("\t")
            eid = eid[1:-1] if "\\" not in eid else loads(eid)
            if tenant == "null":
                tenant = ""
            else:
                tenant = tenant[1:-1] if "\\" not in tenant else loads(tenant)
            yield eid, tenant, parse_time(exact).replace(tzinfo=UTC), entry_hash

    def _chunks(
        self, after: datetime | None, through: datetime | None, tenant: str | None
    ) -> Iterator[list[str]]:
        """Keyset chunks of hashed lines, oldest first."""
        key: tuple[datetime, str] | None = None
        while True:
            if key is None:
                where, params = self._range_sql(after, through, tenant)
            else:
                where, params = self._range_sql(None, through, tenant)
                where = f'("createdAt", id) > (%s, %s) AND {where}'
                params = [*key, *params]
            rows = self._rows(where, f' ORDER BY "createdAt", id LIMIT {CHUNK}')
            lines = self._hashed_lines(rows, params)
            if lines:
                yield lines
            if len(lines) < CHUNK:
                return
            eid, _tenant, exact, _hash = lines[-1].split("\t")
            key = (datetime.fromisoformat(exact).replace(tzinfo=UTC), json.loads(eid))

    def hashed_between(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> Iterator[Hashed]:
        chunks = self._chunks(after, through, tenant)
        if not connections[self.alias].in_atomic_block:
            # PostgreSQL hashes the next chunk while this thread handles the
            # current one (a transaction's view cannot be shared: not inside one).
            chunks = read_ahead(chunks, name="integrity-read-ahead")
        for lines in chunks:
            yield from self._hashed(lines)

    def leaves_between(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> tuple[str, int]:
        """The entries of ``(after, through]`` as a digest lists them
        (``lines_for(tenant)``: ``"<id> <hash>\\n"``, by tenant in code point
        order, then in seal order), and their number."""
        where, params = self._range_sql(after, through, tenant)
        return self._aggregate(
            self._rows(where),
            params,
            f"e.id || ' ' || {self._entry_hash()} || E'\\n'",
            'coalesce(e."tenantId", \'\') COLLATE "C", e."createdAt", e.id',
        )

    def leaf_ranges(
        self, ranges: list[tuple[datetime | None, datetime]], *, tenant: str | None = None
    ) -> Iterator[tuple[str, int]]:
        """``leaves_between`` for each range in turn, the next one read ahead
        while this one is compared (the verifier's blocks)."""
        leaves = (self.leaves_between(lower, upper, tenant=tenant) for lower, upper in ranges)
        if not connections[self.alias].in_atomic_block:
            leaves = read_ahead(leaves, name="integrity-read-ahead")
        yield from leaves

    def hashed_by_ids(self, ids: Iterable[str], *, tenant: str | None = None) -> Iterator[Hashed]:
        ids = list(ids)
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        for start in range(0, len(ids), 5000):
            rows = self._rows(f"id = ANY(%s){tenant_sql}")
            params = [ids[start : start + 5000], *tenant_params]
            yield from self._hashed(self._hashed_lines(rows, params))


def source_for(alias: str | None = None) -> DjangoSource:
    alias = alias or settings.AUDIT_DB_ALIAS
    if connections[alias].vendor == "postgresql":
        return PostgresSource(alias)
    return DjangoSource(alias)
