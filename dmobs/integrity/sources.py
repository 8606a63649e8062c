"""Hashed entries read from the audit store, for the sealer and the verifier.

Every source yields ``(id, tenant, createdAt, entry hash)`` in
``(createdAt, id)`` order; ``tenant`` is the entry's tenantId, ``""`` for a
platform entry (its group in a digest). ``tenant`` arguments: ``None`` for
every entry, ``""`` for platform entries only, else one tenantId.

``DjangoSource`` reads through the ORM (SQLite, MongoDB). ``PostgresSource``
reads keyset chunks with SQL that hands Python the states as jsonb text and
``createdAt`` already in its canonical text, so Python only parses, re-encodes
and hashes (the cost the benchmark measures).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.db import connections
from django.db.models import Q

from dmobs.integrity.canonical import (
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
    r"""The same results as ``DjangoSource``, with PostgreSQL doing its share.

    PostgreSQL writes the canonical form's text around the two state hashes
    (``to_json(text)`` escapes a string exactly as Python's ``json.dumps(...,
    ensure_ascii=False)`` does: ``"``, ``\``, ``\b\f\n\r\t`` and other
    control characters as ``\u00xx``; tested in tests/dmobs/test_integrity.py)
    and ``createdAt`` as canonical text, on its own core. Python adds the state
    hashes (memoised by stored text) and hashes the line: the per-entry work
    left to the sealer's and verifier's process is a few dictionary lookups,
    one string join and one SHA-256.
    """

    def _select(self) -> str:
        """One text line per entry, tab-separated: id and tenantId as JSON, the
        exact createdAt (UTC), the canonical text up to the states, the two
        states as jsonb text (empty for none: JSON text is never empty), the
        canonical text after them. No value holds a raw tab or newline (JSON
        escapes control characters), so the lines split safely."""
        quote = connections[self.alias].ops.quote_name
        meta = AuditLog._meta

        def column(name: str) -> str:
            return quote(meta.get_field(name).column)

        def as_json(name: str) -> str:
            return f"coalesce(to_json({column(name)})::text, 'null')"

        head = " || ',' || ".join(
            ["'[\"dmobs-audit/1\"'", *(as_json(name) for name in _VALUES[:10])]
        )
        created = column("created_at")
        tail = (
            f"{as_json('trace_id')} || ',\"' || to_char({created} AT TIME ZONE 'UTC', "
            """'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"]'"""
        )
        exact = f"""to_char({created} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
        line = " || E'\\t' || ".join(
            [
                as_json("id"),
                as_json("tenant_id"),
                exact,
                head,
                f"coalesce({column('before')}::text, '')",
                f"coalesce({column('after')}::text, '')",
                tail,
            ]
        )
        return f"SELECT {line} AS line, {created}, id FROM {quote(meta.db_table)}"

    def _tenant_sql(self, tenant: str | None) -> tuple[str, list]:
        if tenant is None:
            return "", []
        if tenant == "":
            return ' AND ("tenantId" IS NULL OR "tenantId" = \'\')', []
        return ' AND "tenantId" = %s', [tenant]

    def _lines(self, sql: str, params: list) -> list[str]:
        """The lines of ``sql`` (ordered by createdAt, id), fetched as one text:
        PostgreSQL joins them (string_agg), so the driver decodes one value per
        chunk instead of one row per entry."""
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT string_agg(line, E'\\n' ORDER BY \"createdAt\", id) FROM ({sql}) AS chunk",
                params,
            )
            (text,) = cursor.fetchone()
        return text.split("\n") if text else []

    @staticmethod
    def _hashed(lines: list[str]) -> Iterator[Hashed]:
        state = state_hash_of_text
        sha = hashlib.sha256
        parse_time = datetime.fromisoformat
        loads = json.loads
        for line in lines:
            eid, tenant, exact, head, before, after, tail = line.split("\t")
            eid = eid[1:-1] if "\\" not in eid else loads(eid)
            if tenant == "null":
                tenant = ""
            else:
                tenant = tenant[1:-1] if "\\" not in tenant else loads(tenant)
            b = f'"{state(before)}"' if before else "null"
            a = f'"{state(after)}"' if after else "null"
            yield (
                eid,
                tenant,
                parse_time(exact).replace(tzinfo=UTC),
                sha(f"{head},{b},{a},{tail}".encode()).hexdigest(),
            )

    def _chunks(
        self, after: datetime | None, through: datetime | None, tenant: str | None
    ) -> Iterator[list[str]]:
        """Keyset chunks of lines, oldest first."""
        select = self._select()
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        key: tuple[datetime, str] | None = None
        while True:
            where, params = ["TRUE"], []
            if key is not None:
                where.append('("createdAt", id) > (%s, %s)')
                params += list(key)
            elif after is not None:
                where.append('"createdAt" > %s')
                params.append(after)
            if through is not None:
                where.append('"createdAt" <= %s')
                params.append(through)
            sql = (
                f"{select} WHERE {' AND '.join(where)}{tenant_sql} "
                f'ORDER BY "createdAt", id LIMIT {CHUNK}'
            )
            lines = self._lines(sql, params + tenant_params)
            if lines:
                yield lines
            if len(lines) < CHUNK:
                return
            eid, _tenant, exact, _rest = lines[-1].split("\t", 3)
            key = (datetime.fromisoformat(exact).replace(tzinfo=UTC), json.loads(eid))

    def hashed_between(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> Iterator[Hashed]:
        chunks = self._chunks(after, through, tenant)
        if not connections[self.alias].in_atomic_block:
            # PostgreSQL prepares the next chunk while this thread hashes the
            # current one (a transaction's view cannot be shared: not inside one).
            chunks = read_ahead(chunks, name="integrity-read-ahead")
        for lines in chunks:
            yield from self._hashed(lines)

    def hashed_ranges(
        self, ranges: list[tuple[datetime | None, datetime]], *, tenant: str | None = None
    ) -> Iterator[Iterator[Hashed]]:
        """``hashed_between`` for each range in turn, the next range read ahead
        while this one is hashed (the verifier's blocks)."""

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
            yield self._hashed(lines)

    def hashed_by_ids(self, ids: Iterable[str], *, tenant: str | None = None) -> Iterator[Hashed]:
        ids = list(ids)
        select = self._select()
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        for start in range(0, len(ids), 5000):
            sql = f"{select} WHERE id = ANY(%s){tenant_sql}"
            yield from self._hashed(self._lines(sql, [ids[start : start + 5000], *tenant_params]))


def source_for(alias: str | None = None) -> DjangoSource:
    alias = alias or settings.AUDIT_DB_ALIAS
    if connections[alias].vendor == "postgresql":
        return PostgresSource(alias)
    return DjangoSource(alias)
