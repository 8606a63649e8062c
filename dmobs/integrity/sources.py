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
from collections.abc import Iterable, Iterator
from datetime import datetime

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
        from dmobs.models import AuditLog

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
        from dmobs.models import AuditLog

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
        return (
            f"SELECT {column('id')}, {column('tenant_id')}, {created}, {head}, "
            f"{column('before')}::text, {column('after')}::text, {tail} "
            f"FROM {quote(meta.db_table)}"
        )

    def _tenant_sql(self, tenant: str | None) -> tuple[str, list]:
        if tenant is None:
            return "", []
        if tenant == "":
            return ' AND ("tenantId" IS NULL OR "tenantId" = \'\')', []
        return ' AND "tenantId" = %s', [tenant]

    @staticmethod
    def _hashed(rows: list[tuple]) -> Iterator[Hashed]:
        state = state_hash_of_text
        sha = hashlib.sha256
        for eid, tenant, created, head, before, after, tail in rows:
            b = "null" if before is None else f'"{state(before)}"'
            a = "null" if after is None else f'"{state(after)}"'
            yield eid, tenant or "", created, sha(f"{head},{b},{a},{tail}".encode()).hexdigest()

    def hashed_between(
        self, after: datetime | None, through: datetime | None, *, tenant: str | None = None
    ) -> Iterator[Hashed]:
        select = self._select()
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        key: tuple[datetime, str] | None = None
        connection = connections[self.alias]
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
            with connection.cursor() as cursor:
                cursor.execute(sql, params + tenant_params)
                rows = cursor.fetchall()
            yield from self._hashed(rows)
            if len(rows) < CHUNK:
                return
            key = (rows[-1][2], rows[-1][0])

    def hashed_by_ids(self, ids: Iterable[str], *, tenant: str | None = None) -> Iterator[Hashed]:
        ids = list(ids)
        select = self._select()
        tenant_sql, tenant_params = self._tenant_sql(tenant)
        connection = connections[self.alias]
        for start in range(0, len(ids), 5000):
            with connection.cursor() as cursor:
                cursor.execute(
                    f'{select} WHERE id = ANY(%s){tenant_sql} ORDER BY "createdAt", id',
                    [ids[start : start + 5000], *tenant_params],
                )
                rows = cursor.fetchall()
            yield from self._hashed(rows)


def source_for(alias: str | None = None) -> DjangoSource:
    alias = alias or settings.AUDIT_DB_ALIAS
    if connections[alias].vendor == "postgresql":
        return PostgresSource(alias)
    return DjangoSource(alias)
