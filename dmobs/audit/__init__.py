"""The audit writer: record what people, agents and the system did.

    from dmobs.audit import audit_log, flush

- ``api``: ``audit_log()`` (validate, fill id/time/trace id, span event, hand
  to the writer) and ``flush()``; the public write API.
- ``writer``: the background queue, batches and retries.
- ``spool``: the fsynced disk journal a batch goes to when the store fails.
- ``stores``: where entries land (``sql`` for PostgreSQL/SQLite, ``mongo``).

Entries are dicts shaped by ``dmobs.records``; ids come from ``dmobs.ids``;
the words (actor types, name rule, trace-id rule) from ``dmobs.vocabulary``.
"""

from dmobs.audit.api import audit_log, flush

__all__ = ["audit_log", "flush"]
