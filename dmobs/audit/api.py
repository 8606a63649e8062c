"""The public write API: ``audit_log()``, mirroring the platform's ``auditLog()``.

    from dmobs.audit import audit_log

    audit_log(
        tenant_id=tenant.ref_id, actor_type="human", actor_id=user.ref_id,
        actor_name=user.get_full_name(), action="approved",
        resource_type="strategy", resource_id="st_42", resource_name="Q3 plan",
        description="Sarah approved the strategy Q3 plan",
        before={"status": "draft"}, after={"status": "approved"},
    )

It validates the entry (a ``ValueError`` naming the bad field), fills ``id``,
``created_at`` (UTC) and ``trace_id`` (from the current span), records an
OpenTelemetry span event ``audit_log``, hands the entry to the background
writer and returns its id at once.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from dmobs.audit import writer as _writer_module
from dmobs.ids import new_object_id
from dmobs.vocabulary import ACTOR_TYPES, NAME_MAX_LENGTH, NAME_RE, NAME_RULE, is_valid_trace_id

# What one before/after state may be (issue 13): the platform's snapshots are a
# few levels deep and a few KB; these bounds leave room for much more and keep
# every entry within what the screens show and export comfortably.
MAX_STATE_DEPTH = 64  # nested objects/arrays
MAX_STATE_BYTES = 1024 * 1024  # 1 MiB of UTF-8 JSON text

_tracer = trace.get_tracer("dmobs.audit")

__all__ = ["audit_log", "flush"]


def _text(field: str, value: object, *, max_length: int, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"audit_log(): {field} is required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"audit_log(): {field} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"audit_log(): {field} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"audit_log(): {field} is longer than {max_length} characters")
    _storable(field, value)
    return value


def _storable(field: str, text: str) -> None:
    """Reject text that no store can hold: PostgreSQL refuses NUL in text and
    jsonb, and a lone surrogate cannot be encoded as UTF-8. Caught here, the
    caller gets an error naming the field; caught by the store, the entry would
    fail its whole batch (and every replay of it)."""
    if "\x00" in text:
        raise ValueError(f"audit_log(): {field} contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"audit_log(): {field} contains a lone surrogate (not valid Unicode)"
            ) from None


def _name(field: str, value: object) -> str:
    text = _text(field, value, max_length=NAME_MAX_LENGTH)
    if not NAME_RE.match(text):
        raise ValueError(
            f"audit_log(): {field} must be {NAME_RULE} (like 'approved'), got {value!r}"
        )
    return text


def _json_state(field: str, value: object) -> str | None:
    """The JSON text of a before/after value. Encoding checks the value and freezes
    it: later changes by the caller to its own dict cannot alter the entry. The
    text, not a parsed copy, is what the entry keeps (``dmobs.records``)."""
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except RecursionError:
        raise ValueError(
            f"audit_log(): {field} is nested deeper than {MAX_STATE_DEPTH} levels"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit_log(): {field} is not JSON-serialisable: {exc}") from None
    if len(text) * 4 > MAX_STATE_BYTES and len(text.encode("utf-8", "surrogatepass")) > (
        MAX_STATE_BYTES
    ):
        raise ValueError(
            f"audit_log(): {field} is larger than {MAX_STATE_BYTES:,} bytes of JSON "
            f"({len(text.encode('utf-8', 'surrogatepass')):,}); record a summary or a reference"
        )
    if text.count("{") + text.count("[") > MAX_STATE_DEPTH and _depth(text) > MAX_STATE_DEPTH:
        raise ValueError(f"audit_log(): {field} is nested deeper than {MAX_STATE_DEPTH} levels")
    if "\\u0000" in text and _holds_nul(json.loads(text)):
        raise ValueError(f"audit_log(): {field} contains a NUL character")
    _storable(field, text)
    return text


_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(text: str) -> int:
    """How deeply the objects and arrays of JSON ``text`` nest (brackets inside
    strings do not count); without recursion, so any depth can be measured."""
    depth = deepest = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("{", "["):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("}", "]"):
            depth -= 1
    return deepest


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def build_entry(
    *,
    tenant_id: str | None,
    actor_type: str,
    actor_id: str,
    actor_name: str,
    action: str,
    resource_type: str,
    resource_id: str,
    resource_name: str | None = None,
    description: str,
    before: Any = None,
    after: Any = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """Validate and normalise one entry (without trace id or span event)."""
    if tenant_id is not None:
        _text("tenant_id", tenant_id, max_length=64)
    if actor_type not in ACTOR_TYPES:
        raise ValueError(
            f"audit_log(): actor_type must be one of {', '.join(ACTOR_TYPES)}; got {actor_type!r}"
        )
    if isinstance(resource_id, int) and not isinstance(resource_id, bool):
        resource_id = str(resource_id)
    if trace_id is not None:
        if not isinstance(trace_id, str) or not is_valid_trace_id(trace_id.lower()):
            raise ValueError(
                f"audit_log(): trace_id must be 32 hex digits and not all zero, got {trace_id!r}"
            )
        trace_id = trace_id.lower()
    return {
        "id": new_object_id(),
        "tenant_id": tenant_id,
        "actor_type": actor_type,
        "actor_id": _text("actor_id", actor_id, max_length=64),
        "actor_name": _text("actor_name", actor_name, max_length=200),
        "action": _name("action", action),
        "resource_type": _name("resource_type", resource_type),
        "resource_id": _text("resource_id", resource_id, max_length=128),
        "resource_name": _text("resource_name", resource_name, max_length=300, required=False),
        "description": _text("description", description, max_length=10_000),
        "before": _json_state("before", before),
        "after": _json_state("after", after),
        "trace_id": trace_id,
        "created_at": datetime.now(UTC),
    }


def _event_attributes(entry: dict[str, Any]) -> dict[str, str]:
    attributes = {
        "audit.id": entry["id"],
        "audit.action": entry["action"],
        "audit.resource_type": entry["resource_type"],
        "audit.resource_id": entry["resource_id"],
        "audit.actor_type": entry["actor_type"],
    }
    if entry["tenant_id"]:
        attributes["audit.tenant_id"] = entry["tenant_id"]
    return attributes


def _attach_to_trace(entry: dict[str, Any]) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("audit_log", _event_attributes(entry))
        ctx = span.get_span_context()
    else:
        with _tracer.start_as_current_span("audit_log") as own:
            own.add_event("audit_log", _event_attributes(entry))
            ctx = own.get_span_context()
    if entry["trace_id"] is None:
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            # Not stored: the writer's batch span links to this span.
            entry["span_id"] = format(ctx.span_id, "016x")
        else:
            # No tracer provider configured: still give the entry a trace id.
            entry["trace_id"] = os.urandom(16).hex()


def audit_log(
    *,
    tenant_id: str | None,
    actor_type: str,
    actor_id: str,
    actor_name: str,
    action: str,
    resource_type: str,
    resource_id: str,
    resource_name: str | None = None,
    description: str,
    before: Any = None,
    after: Any = None,
    trace_id: str | None = None,
) -> str:
    """Record one audit entry; returns its id at once (the write happens in the background)."""
    entry = build_entry(
        tenant_id=tenant_id,
        actor_type=actor_type,
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        description=description,
        before=before,
        after=after,
        trace_id=trace_id,
    )
    _attach_to_trace(entry)
    _writer_module.get_writer().submit(entry)
    return entry["id"]


def flush(timeout: float | None = 10.0) -> bool:
    """Block until every accepted entry is stored or spooled (False on timeout)."""
    return _writer_module.flush(timeout)
