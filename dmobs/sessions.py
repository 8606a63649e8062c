"""Database sessions (``SESSION_ENGINE``), read with one plain query.

Every signed-in request reads its session row. Django's database store reads it
through the ORM, whose query building cost about as much as the round trip and
the query together (~0.5 ms of a list page's ~15, issue 16). This store reads
the same row of the same table on the same conditions (this key, not expired)
with one SQL statement; creating, saving, deleting and cycling keys, the signed
encoding and everything else stay Django's own.

Nothing is kept between requests: a session deleted (sign-out, revocation) or
expired in the database is gone for every worker on its very next request.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.db import router
from django.utils import timezone

from dmobs.plainsql import sql_connection

_FIELDS = ("session_key", "session_data", "expire_date")


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        model = self.model
        connection = sql_connection(router.db_for_read(model))
        if connection is None:
            return super()._get_session_from_db()
        quote = connection.ops.quote_name
        meta = model._meta
        column = {name: quote(meta.get_field(name).column) for name in _FIELDS}
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {column['session_data']} FROM {quote(meta.db_table)} "
                f"WHERE {column['session_key']} = %s AND {column['expire_date']} > %s",
                [
                    self.session_key,
                    connection.ops.adapt_datetimefield_value(timezone.now()),
                ],
            )
            row = cursor.fetchone()
        if row is None:
            # As Django's store: an unknown or expired key is dropped, and a
            # new session (if one is needed) gets a new key.
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])
