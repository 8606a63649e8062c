"""Where the request path's plain-SQL readers may run.

The session (``dmobs.sessions``), the signed-in user (``dmobs.auth``), a user's
memberships and Manage's tenant list (``dmobs.models``) are read on every request
with one SQL statement each instead of through the ORM (issue 16). On a store that
does not speak SQL (MongoDB through django-mongodb-backend) they read through the
ORM as Django would.
"""

from __future__ import annotations

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

SQL_VENDORS = frozenset({"postgresql", "sqlite"})


def sql_connection(alias: str) -> BaseDatabaseWrapper | None:
    """The connection of ``alias`` when a plain SQL statement can run on it, else None."""
    connection = connections[alias]
    return connection if connection.vendor in SQL_VENDORS else None
