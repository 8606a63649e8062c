"""The canonical form of an audit entry, and its hash.

An entry's canonical form is the UTF-8 text of one JSON array (no spaces,
non-ASCII characters as themselves, ``/`` not escaped)::

    ["dmobs-audit/1", id, tenantId, actorType, actorId, actorName, action,
     resourceType, resourceId, resourceName, description,
     sha256(before) or null, sha256(after) or null, traceId, createdAt]

* Every field is there, in that order, ``null`` when absent (MongoDB may leave a
  field out; SQL stores NULL: both are ``null``).
* ``createdAt`` is ISO-8601 UTC with milliseconds and ``Z``
  (``2026-12-01T09:30:00.123Z``): MongoDB keeps milliseconds, SQL microseconds,
  the platform writes milliseconds, so the millisecond is what every store agrees on.
* ``before``/``after`` enter as the hex SHA-256 of their own canonical JSON:
  keys sorted (by code point) at every level, no spaces, numbers written as
  integers when they are whole and within +-2^53, else as the shortest text
  that reads back as the same double (Python's ``repr``). PostgreSQL's jsonb
  (which reorders keys and rewrites ``1.0`` as ``1.0`` but ``1e2`` as ``100``),
  SQLite's text and MongoDB's BSON doubles all give the same text this way.
  Hashing the states separately lets an export mask a secret in a state and
  still carry what is needed to check the entry (see ``state_hash``).

The entry hash is the hex SHA-256 of the canonical form's UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

FORMAT = "dmobs-audit/1"
MAX_SAFE_INTEGER = 2**53

# Stored names in canonical order; before/after are replaced by their hashes.
CANONICAL_FIELDS = (
    "id",
    "tenantId",
    "actorType",
    "actorId",
    "actorName",
    "action",
    "resourceType",
    "resourceId",
    "resourceName",
    "description",
    "before",
    "after",
    "traceId",
    "createdAt",
)

_sha256 = hashlib.sha256
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
_dumps_flat = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _number(text: str) -> int | float:
    value = float(text)
    if value.is_integer() and -MAX_SAFE_INTEGER < value < MAX_SAFE_INTEGER:
        return int(value)
    return value


_decoder = json.JSONDecoder(parse_float=_number)
_loads = _decoder.decode


def parse_state_text(text: str | None) -> Any:
    """A before/after state from JSON text, numbers made canonical."""
    if text is None:
        return None
    return _loads(text)


def canonical_state(value: Any) -> Any:
    """A before/after state from a JSON value (a dict from the ORM, BSON, a record)."""
    if value is None:
        return None
    if isinstance(value, str):
        # A JSON string state is a value of its own, not text to parse.
        return value
    return _loads(json.dumps(value, ensure_ascii=False))


def state_text(value: Any) -> str | None:
    """The canonical JSON text of a state (already canonical, see above)."""
    return None if value is None else _dumps(value)


def state_hash(value: Any) -> str | None:
    """Hex SHA-256 of a state's canonical JSON, None for no state."""
    if value is None:
        return None
    return _sha256(_dumps(value).encode()).hexdigest()


def format_created(value: datetime) -> str:
    """``createdAt`` as the canonical form writes it (UTC, milliseconds, ``Z``)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def canonical_text(
    id: str,
    tenant_id: str | None,
    actor_type: str | None,
    actor_id: str | None,
    actor_name: str | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    resource_name: str | None,
    description: str | None,
    before_hash: str | None,
    after_hash: str | None,
    trace_id: str | None,
    created: str,
) -> str:
    return _dumps_flat(
        [
            FORMAT,
            id,
            tenant_id,
            actor_type,
            actor_id,
            actor_name,
            action,
            resource_type,
            resource_id,
            resource_name,
            description,
            before_hash,
            after_hash,
            trace_id,
            created,
        ]
    )


def value_text(value: Any) -> str:
    """One value of the canonical array as JSON text (a string escaped as
    PostgreSQL's ``to_json`` escapes it)."""
    return _dumps_flat(value)


def hash_text(text: str) -> str:
    return _sha256(text.encode()).hexdigest()


# Hashes of states by their stored text, as the canonical array writes them
# (``"<hex>"``; ``null`` for the empty text, which stands for no state). Many
# entries share a state ({"status": "draft"}, an agent's configuration), and
# the text a store returns for a value is always the same, so a state is parsed
# and hashed once per run. Bounded. Read it with ``.get`` where every entry
# counts (PostgreSQL's source), falling back to ``state_hash_json_of_text``.
STATE_HASH_JSON: dict[str, str] = {"": "null"}
_STATE_HASH_JSON_MAX = 200_000


def state_hash_json_of_text(text: str) -> str:
    """``state_hash`` as canonical JSON (``"<hex>"``, or ``null`` for ``""``)
    of a state given as stored JSON text (memoised in ``STATE_HASH_JSON``)."""
    cached = STATE_HASH_JSON.get(text)
    if cached is None:
        if not text:
            return "null"
        cached = f'"{_sha256(_dumps(_loads(text)).encode()).hexdigest()}"'
        if len(STATE_HASH_JSON) >= _STATE_HASH_JSON_MAX:
            STATE_HASH_JSON.clear()
            STATE_HASH_JSON[""] = "null"
        STATE_HASH_JSON[text] = cached
    return cached


def record_canonical(record: dict[str, Any]) -> str:
    """Canonical form of a record (stored names, JSON states, createdAt as
    ISO text or a datetime), as the export and the spool carry it.

    A record may carry ``beforeSha256``/``afterSha256`` instead of a state the
    export masked; the hash given stands for the state.
    """
    created = record.get("createdAt")
    if isinstance(created, datetime):
        created = format_created(created)
    elif created is not None:
        created = format_created(datetime.fromisoformat(str(created).replace("Z", "+00:00")))
    hashes = []
    for name in ("before", "after"):
        given = record.get(f"{name}Sha256")
        hashes.append(given if given is not None else state_hash(canonical_state(record.get(name))))
    return canonical_text(
        None if record.get("id") is None else str(record["id"]),
        record.get("tenantId"),
        record.get("actorType"),
        record.get("actorId"),
        record.get("actorName"),
        record.get("action"),
        record.get("resourceType"),
        record.get("resourceId"),
        record.get("resourceName"),
        record.get("description"),
        hashes[0],
        hashes[1],
        record.get("traceId"),
        created,
    )


def record_hash(record: dict[str, Any]) -> str:
    return hash_text(record_canonical(record))
