"""The audit store on MongoDB: what the writer needs beyond the ORM there.

django-mongodb-backend has no ``bulk_create(ignore_conflicts=True)`` (MongoDB
has no ``INSERT ... ON CONFLICT DO NOTHING``), and that flag is what makes a
retried or replayed batch idempotent on SQL. ``MongoStore`` gets the same
guarantee the MongoDB way: an unordered ``insert_many`` inserts every document
it can and reports each duplicate ``_id`` as a write error with code 11000;
those entries are already stored, anything else is a real failure.
"""

from __future__ import annotations

from typing import Any

from bson.errors import InvalidDocument
from django.conf import settings
from django.db import connections
from pymongo.errors import BulkWriteError

from dmobs.models import AuditLog
from dmobs.observability.logger import get_logger
from dmobs.records import model_values

log = get_logger("dmobs.mongo")

DUPLICATE_KEY = 11000


def documents(entries: list[dict[str, Any]], connection) -> list[dict[str, Any]]:
    """The BSON documents of these entries, as the ORM would insert them.

    Each value goes through its field's ``get_db_prep_save()`` for this
    connection, under the field's stored name: the id becomes an ObjectId in
    ``_id``, ``created_at`` a BSON date in ``createdAt``, JSON states
    subdocuments. Same conversions as django-mongodb-backend's insert compiler.
    """
    fields = AuditLog._meta.concrete_fields
    docs = []
    for entry in entries:
        obj = AuditLog(**model_values(entry))
        docs.append(
            {
                field.column: field.get_db_prep_save(field.pre_save(obj, True), connection)
                for field in fields
            }
        )
    return docs


def insert_ignoring_duplicates(collection, docs: list[dict[str, Any]]) -> tuple[int, int]:
    """Unordered insert; returns (inserted, already stored). Raises on any other error."""
    try:
        result = collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        details = exc.details or {}
        others = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or details.get("writeConcernErrors"):
            raise
        duplicates = len(details.get("writeErrors", []))
        return details.get("nInserted", len(docs) - duplicates), duplicates
    return len(result.inserted_ids), 0


class MongoStore:
    """Inserts entries into ``audit_logs`` on a MongoDB alias with PyMongo.

    Batches of ``batch_size`` documents, unordered, duplicates of ``_id``
    counted as already stored; so a retry or a spool replay of entries that
    did reach the server is a no-op for them, as on SQL.
    """

    def __init__(self, alias: str | None = None, *, batch_size: int = 1000):
        self._alias = alias
        self.batch_size = batch_size

    @property
    def alias(self) -> str:
        return self._alias or settings.AUDIT_DB_ALIAS

    def write(self, entries: list[dict[str, Any]]) -> int:
        connection = connections[self.alias]
        collection = connection.get_collection(AuditLog._meta.db_table)
        docs = documents(entries, connection)
        duplicates = 0
        for start in range(0, len(docs), self.batch_size):
            _, dup = insert_ignoring_duplicates(collection, docs[start : start + self.batch_size])
            duplicates += dup
        if duplicates:
            log.info("audit entries already stored", entries=duplicates)
        return len(entries)

    @staticmethod
    def refuses(exc: BaseException) -> bool:
        """The server answered and refused documents (per-document write errors,
        a document BSON cannot hold), as opposed to being unreachable."""
        if isinstance(exc, BulkWriteError):
            details = exc.details or {}
            return bool(details.get("writeErrors")) and not details.get("writeConcernErrors")
        return isinstance(exc, InvalidDocument | TypeError | ValueError)

    def close(self) -> None:
        # The MongoClient is a thread-safe pool shared by the process; there is
        # no per-thread connection to close.
        pass
