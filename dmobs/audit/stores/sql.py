"""The audit store on SQL databases (PostgreSQL, SQLite, any other Django backend).

``INSERT ... ON CONFLICT (id) DO NOTHING`` makes a second insert of the same id
a no-op: that is what makes the writer's retries and the spool's replays
idempotent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connections

from dmobs.models import AuditLog
from dmobs.records import FIELDS, JSON_STATES, model_values


class DjangoStore:
    """Inserts entries into the audit database alias.

    ``INSERT ... ON CONFLICT (id) DO NOTHING`` (``_insert_postgresql``,
    ``_insert_sqlite``) turns a second insert of the same id into a no-op, which is
    what makes retries and replays idempotent; any other constraint still fails
    the batch, and ``refuses()`` tells such a refusal from an unreachable store.
    """

    def __init__(self, alias: str | None = None):
        self._alias = alias

    @property
    def alias(self) -> str:
        return self._alias or settings.AUDIT_DB_ALIAS

    def write(self, entries: list[dict[str, Any]]) -> int:
        try:
            connection = connections[self.alias]
            if connection.vendor == "postgresql":
                _insert_postgresql(connection, entries)
            elif connection.vendor == "sqlite":
                _insert_sqlite(connection, entries)
            else:
                AuditLog.objects.using(self.alias).bulk_create(
                    [AuditLog(**model_values(entry)) for entry in entries],
                    ignore_conflicts=True,
                    batch_size=1000,
                )
        except Exception:
            # Drop a broken connection so the next attempt reconnects.
            try:
                connections[self.alias].close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail too
                pass
            raise
        return len(entries)

    def close(self) -> None:
        connections[self.alias].close()

    @staticmethod
    def refuses(exc: BaseException) -> bool:
        """The database answered and refused the data (a constraint, a value a
        column cannot hold), as opposed to being unreachable."""
        return isinstance(exc, DataError | IntegrityError | TypeError | ValueError)


# The whole batch travels as one JSON array (one parameter, one round trip in
# autocommit) that PostgreSQL unpacks with json_to_recordset: encoding it is a
# single C call (json.dumps) on the writer thread, so the thread holds the GIL
# (which callers of audit_log() then wait for) for little Python time per entry,
# and the server spends its time inserting rather than waiting for the client.
# The entry's fields (dmobs.records) and the PostgreSQL type each is cast to.
_PG_COLUMNS = tuple(
    (name, {"before": "jsonb", "after": "jsonb", "created_at": "timestamptz"}.get(name, "text"))
    for name, _stored in FIELDS
)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # with microseconds and offset, as stored
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _insert_postgresql(connection, entries: list[dict[str, Any]]) -> None:
    """INSERT ... SELECT FROM json_to_recordset(batch) ON CONFLICT (id) DO NOTHING:
    idempotent like ``bulk_create(ignore_conflicts=True)``, at a fraction of its cost."""
    meta = AuditLog._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name, _ in _PG_COLUMNS)
    # before/after arrive as JSON text inside the document (see dmobs.records).
    record = ", ".join(
        f"{quote(name)} {'text' if kind == 'jsonb' else kind}" for name, kind in _PG_COLUMNS
    )
    picks = ", ".join(f"r.{quote(name)}::{kind}" for name, kind in _PG_COLUMNS)
    batch = json.dumps(entries, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "
            f"SELECT {picks} FROM json_to_recordset(%s::json) AS r({record}) "
            "ON CONFLICT (id) DO NOTHING",
            [batch],
        )


def _insert_sqlite(connection, entries: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (id) DO NOTHING. Not ``bulk_create(ignore_conflicts=
    True)``: on SQLite that is INSERT OR IGNORE, which also skips, silently, a row
    that breaks NOT NULL; an entry would be lost while reported stored."""
    meta = AuditLog._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name, _stored in FIELDS]
    columns = ", ".join(quote(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    # before/after are JSON text already, which is what SQLite stores.
    rows = [
        [
            entry.get(field.name)
            if field.name in JSON_STATES
            else field.get_db_prep_save(entry.get(field.name), connection)
            for field in fields
        ]
        for entry in entries
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks}) "
            "ON CONFLICT (id) DO NOTHING",
            rows,
        )
