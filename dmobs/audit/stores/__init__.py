"""Where audit entries are stored: ``sql`` (PostgreSQL, SQLite) and ``mongo``.

A store has ``write(entries) -> int`` (idempotent: an entry already stored is
not stored twice), ``close()`` and ``refuses(error) -> bool`` (did the store
answer and refuse the data, as opposed to being unreachable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections

from dmobs.audit.stores.mongo import MongoStore
from dmobs.audit.stores.sql import DjangoStore


def refusal_test(store: Any) -> Callable[[BaseException], bool] | None:
    """The store's ``refuses(error)``: did it answer and refuse the data (see
    ``Spool.replay``)? None for a store that cannot tell."""
    return getattr(store, "refuses", None)


def select_store(alias: str | None = None) -> Any:
    """The store for the audit alias: ``MongoStore`` on MongoDB, else ``DjangoStore``."""
    if connections[alias or settings.AUDIT_DB_ALIAS].vendor == "mongodb":
        return MongoStore(alias)
    return DjangoStore(alias)
