"""How ``dmobs.models.AuditLogQuery``/``AuditLogQuerySet`` read on MongoDB: a
compiler tweak that lets the list indexes serve the sort, and ``$text`` search.

The writes to MongoDB are ``dmobs.audit.stores.mongo``'s.
"""

from __future__ import annotations

from django.db import NotSupportedError
from django.db.models import Lookup

# For a plain ``order_by("-created_at", "-id")`` django-mongodb-backend 5.2 emits
# ``$match, {$addFields: {createdAt: "$createdAt", _id: "$_id"}}, $sort, $limit``.
# The identity ``$addFields`` changes nothing in the documents, but MongoDB does
# not move a ``$sort`` ahead of an ``$addFields`` (server ticket SERVER-26442), so
# the sort cannot be answered from the ``createdAt: -1, _id: -1`` indexes and
# every matching document is read and sorted in memory, on every page. Dropping
# the identity entries gives ``$match, $sort, $limit``: a keyset page becomes one
# index range scan. An entry ``{f: "$f"}`` is a no-op even when ``f`` is missing
# (``$addFields`` does not add a field whose value is missing), so this is exact.

_INDEX_FRIENDLY: dict[type, type] = {}


class IndexFriendlyCompilerMixin:
    def build_query(self, columns=None):
        query = super().build_query(columns)
        extra = getattr(query, "extra_fields", None)
        if extra:
            kept = {name: value for name, value in extra.items() if value != f"${name}"}
            query.extra_fields = kept or None
        return query


def index_friendly(compiler):
    """Give a django-mongodb-backend select compiler the mixin above."""
    cls = type(compiler)
    if cls.__module__ != "django_mongodb_backend.compiler" or cls.__name__ != "SQLCompiler":
        return compiler
    if cls not in _INDEX_FRIENDLY:
        _INDEX_FRIENDLY[cls] = type(
            "IndexFriendlySQLCompiler", (IndexFriendlyCompilerMixin, cls), {}
        )
    compiler.__class__ = _INDEX_FRIENDLY[cls]
    return compiler


class TextSearch(Lookup):
    """MongoDB's ``$text`` over the text index of ``audit_logs`` (migration 0003).

    Used as ``qs.filter(TextSearch(F("description"), "words"))``; the index
    covers description, actorName, resourceName and resourceId whichever field
    is named. ``$text`` is a top-level query condition: it cannot sit in an
    ``$expr`` or under ``$or``/``$nor``, so AND it with the other filters only.
    Quotes and leading minus signs are removed from the words: they are
    ``$text`` syntax (phrase, negation), not part of what the viewer typed.
    """

    lookup_name = "mongo_text"
    can_use_path = True

    def __init__(self, lhs, rhs):
        super().__init__(lhs, rhs)
        words = (word.lstrip("-") for word in str(self.rhs).replace('"', " ").split())
        self.search = " ".join(word for word in words if word)

    def as_mql_path(self, compiler, connection):
        return {"$text": {"$search": self.search}}

    def as_mql_expr(self, compiler, connection):
        raise NotSupportedError("$text search must be a top-level condition of the query")

    def as_sql(self, compiler, connection):
        raise NotSupportedError("TextSearch is MongoDB's $text; SQL databases use icontains")
