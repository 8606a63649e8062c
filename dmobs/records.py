"""Conversion between an entry (Python names) and a record (stored names).

A record is what the spool, the export and the platform's Node services use:
the camelCase field names of ``audit_logs`` and ISO-8601 UTC times.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# (python name, stored name), in export column order.
FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("tenant_id", "tenantId"),
    ("actor_type", "actorType"),
    ("actor_id", "actorId"),
    ("actor_name", "actorName"),
    ("action", "action"),
    ("resource_type", "resourceType"),
    ("resource_id", "resourceId"),
    ("resource_name", "resourceName"),
    ("description", "description"),
    ("before", "before"),
    ("after", "after"),
    ("trace_id", "traceId"),
    ("created_at", "createdAt"),
)
STORED_NAMES: tuple[str, ...] = tuple(stored for _py, stored in FIELDS)


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a ``Z``, like JavaScript's toISOString."""
    value = value.astimezone(UTC)
    # Not strftime: its %Y gives "1", not "0001", for year 1 on glibc.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# In an entry (what audit_log() queues and the stores write), before and after
# are JSON text, as audit_log() encoded them: frozen, and no container for the
# garbage collector to track in the queue. In a record and in the model they
# are the JSON values.
JSON_STATES = ("before", "after")


def parse_state(text: Any) -> Any:
    """The JSON value of an entry's before/after text (None: no state recorded)."""
    return json.loads(text) if isinstance(text, str) else text


def dump_state(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def model_values(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's values as ``AuditLog(**values)`` takes them.

    Only the stored fields: an entry may carry more on its way (``span_id``, the
    span the writer's batch span links to), which is not a column.
    """
    values = {name: entry[name] for name, _stored in FIELDS if name in entry}
    for key in JSON_STATES:
        values[key] = parse_state(entry.get(key))
    return values


def entry_to_record(entry: dict[str, Any]) -> dict[str, Any]:
    record = {stored: entry.get(py) for py, stored in FIELDS}
    record["createdAt"] = format_time(entry["created_at"])
    for key in JSON_STATES:
        record[key] = parse_state(record[key])
    return record


def record_to_entry(record: dict[str, Any]) -> dict[str, Any]:
    entry = {py: record.get(stored) for py, stored in FIELDS}
    entry["created_at"] = parse_time(record["createdAt"])
    for key in JSON_STATES:
        entry[key] = dump_state(entry[key])
    return entry


def instance_to_record(obj: Any) -> dict[str, Any]:
    record = {stored: getattr(obj, py) for py, stored in FIELDS}
    record["id"] = str(obj.pk)
    record["createdAt"] = format_time(obj.created_at)
    return record


class PermanentEntryError(Exception):
    """Raised on any attempt to update or delete an audit entry."""

    def __init__(self, operation: str):
        super().__init__(
            f"Audit entries are permanent: {operation} is not allowed on audit_logs "
            "(entries are never updated or deleted)."
        )
        self.operation = operation
