"""Model fields that must mean the same thing on SQL databases and on MongoDB."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from django.db import models


def _is_mongodb(connection) -> bool:
    return connection.vendor == "mongodb"


class ObjectIdHexField(models.CharField):
    """A primary key that is a 24-character hex string in Python and on SQL
    databases, and a native ObjectId stored as ``_id`` on MongoDB.

    Why this field and not one of the stock ones:

    1. The platform's Node services write ``audit_logs`` with a native ObjectId
       ``_id``. MongoDB never matches a string against an ObjectId (``"65f0…"``
       is not ``ObjectId("65f0…")``) and sorts all strings before all ObjectIds,
       so storing our own ids as strings next to theirs would break lookups by
       id, the ``(createdAt, _id)`` keyset order, and the duplicate-key check
       that makes a replayed insert idempotent. On MongoDB the value must be an
       ObjectId, in ``_id``.
    2. Everything above the database speaks hex strings: ``new_object_id()``,
       the spool, cursors, URLs, exports, the SQL column ``varchar(24)``. So the
       Python value stays a ``str`` on every backend (unlike
       django-mongodb-backend's ``ObjectIdAutoField``, whose Python value is an
       ``ObjectId`` and whose column type does not exist on PostgreSQL).
    3. The conversion happens at the database boundary, per connection:
       ``get_db_prep_value()`` turns hex into ``ObjectId`` only when the
       connection is MongoDB, ``from_db_value()`` turns an ``ObjectId`` back
       into hex. Hex order is byte order, which is ObjectId order, so "newest
       first" and keyset comparisons agree on every backend.
    4. The stored name is the one thing that cannot be decided per query: a
       field has one ``column``. A model lives in exactly one database (the
       router sends ``AuditLog`` to ``settings.AUDIT_DB_ALIAS``), so when the
       model class is built, a primary key whose model is routed to MongoDB
       takes the column ``_id`` (MongoDB's only primary key) and keeps ``id``
       everywhere else. ``deconstruct()`` never mentions it, so migrations are
       the same whichever store a machine uses.
    """

    description = "ObjectId (hex string in Python, ObjectId on MongoDB)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 24)
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only=private_only)
        if self.primary_key and self.db_column is None and self._routed_to_mongodb(cls):
            self.column = "_id"

    @staticmethod
    def _routed_to_mongodb(model) -> bool:
        from django.conf import settings
        from django.db import router

        alias = router.db_for_write(model)
        engine = settings.DATABASES.get(alias, {}).get("ENGINE", "")
        return engine.startswith("django_mongodb_backend")

    def db_type(self, connection):
        if _is_mongodb(connection):
            return "objectId"
        return super().db_type(connection)

    def rel_db_type(self, connection):
        return self.db_type(connection)

    def to_python(self, value):
        if isinstance(value, ObjectId):
            return str(value)
        return super().to_python(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if value is None or not _is_mongodb(connection):
            return value
        if isinstance(value, str) and ObjectId.is_valid(value):
            return ObjectId(value)
        # Not an ObjectId (a bad id in a URL): compared as it is, it matches
        # nothing, just as it matches no row on SQL.
        return value

    def from_db_value(self, value, expression, connection):
        if isinstance(value, ObjectId):
            return str(value)
        return value


class PlatformRefField(models.CharField):
    """A platform id (``tenantId``, ``actorId``): text here, either text or an
    ObjectId in the platform's MongoDB.

    The Node services store the platform's ids as ObjectIds as often as strings.
    Read back, an ObjectId becomes its hex (the ``ref_id`` the relational side
    knows); in a query, ``ref_values()`` gives both forms so an entry matches its
    tenant whichever way it was written. ``get_prep_value()`` leaves an ObjectId
    as it is (a plain CharField would turn it into text, which matches nothing).
    ``deconstruct()`` says CharField: the column is the same, so migrations are too.
    """

    def get_prep_value(self, value):
        if isinstance(value, ObjectId):
            return value
        return super().get_prep_value(value)

    def from_db_value(self, value, expression, connection):
        if isinstance(value, ObjectId):
            return str(value)
        return value

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


def ref_values(values, *, alias: str) -> list:
    """The stored forms of platform ids on database ``alias``: the text, and on
    MongoDB also the ObjectId of a 24-hex-digit id."""
    from django.db import connections

    mongodb = _is_mongodb(connections[alias])
    out: list = []
    for value in values:
        out.append(value)
        if mongodb and isinstance(value, str) and ObjectId.is_valid(value):
            out.append(ObjectId(value))
    return out


class UnparsedJSON(str):
    """Stored JSON text that ``json.loads`` could not turn into a value: nested
    deeper than its recursion allows, or not JSON at all. Reads keep the text
    (``dmobs.models.AuditLogQuery``) so one such entry cannot fail a whole page;
    the screens parse it without recursion (``auditui.stored``)."""


def tolerant_converter(convert, *, json_field: bool):
    """``convert`` for one column, returning the stored value instead of raising
    when the value is not what the field expects (a ``createdAt`` that is text or
    a number, JSON too deep for the parser): the read side shows such a value as
    what it is, where a raise here would fail every row of the query."""

    def converter(value, expression, connection):
        try:
            converted = convert(value, expression, connection)
        except (RecursionError, ValueError, TypeError, AttributeError, OverflowError):
            if json_field and isinstance(value, str):
                return UnparsedJSON(value)
            return value
        if converted is None and value is not None and not json_field:
            # SQLite's time parser answers None for text it cannot read.
            return value
        return converted

    return converter
