"""audit_log(): validation, defaults, span events and trace ids."""

from __future__ import annotations

import json

import pytest

from dmobs.audit import audit_log
from dmobs.audit.api import build_entry
from dmobs.models import AuditLog

pytestmark = pytest.mark.django_db


def entry_kwargs(**overrides):
    kwargs = dict(
        tenant_id="t-acme",
        actor_type="human",
        actor_id="u-1",
        actor_name="Sarah Admin",
        action="approved",
        resource_type="strategy",
        resource_id="st-1",
        resource_name="Q3 plan",
        description="Sarah approved the strategy Q3 plan",
        before={"status": "draft"},
        after={"status": "approved"},
    )
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"actor_type": "robot"}, "actor_type"),
        ({"description": ""}, "description"),
        ({"description": "   "}, "description"),
        ({"description": None}, "description"),
        ({"trace_id": "abc"}, "trace_id"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"trace_id": "g" * 32}, "trace_id"),
        ({"before": {"when": object()}}, "before"),
        ({"after": {"x": float("nan")}}, "after"),
        ({"action": "Approved!"}, "action"),
        ({"resource_type": ""}, "resource_type"),
        ({"actor_id": ""}, "actor_id"),
        ({"tenant_id": 42}, "tenant_id"),
    ],
)
def test_validation_error_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        audit_log(**entry_kwargs(**overrides))
    assert AuditLog.objects.count() == 0


def test_entry_is_stored_with_defaults_filled():
    entry_id = audit_log(**entry_kwargs())
    stored = AuditLog.objects.get(pk=entry_id)
    assert len(entry_id) == 24
    assert stored.created_at.utcoffset().total_seconds() == 0
    assert stored.before == {"status": "draft"}
    assert stored.after == {"status": "approved"}
    assert len(stored.trace_id) == 32 and stored.trace_id != "0" * 32


def test_state_is_copied_at_call_time():
    state = {"status": "draft", "tags": ["a"]}
    entry_id = audit_log(**entry_kwargs(before=state))
    state["status"] = "tampered"
    state["tags"].append("b")
    assert AuditLog.objects.get(pk=entry_id).before == {"status": "draft", "tags": ["a"]}


def test_ids_sort_in_creation_order():
    ids = [build_entry(**entry_kwargs())["id"] for _ in range(500)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 500


def test_span_event_on_current_span_and_trace_id_from_it(span_exporter, tracer):
    with tracer.start_as_current_span("request") as span:
        entry_id = audit_log(**entry_kwargs())
        expected_trace = format(span.get_span_context().trace_id, "032x")
    (finished,) = [s for s in span_exporter.get_finished_spans() if s.name == "request"]
    (event,) = [e for e in finished.events if e.name == "audit_log"]
    assert event.attributes["audit.action"] == "approved"
    assert event.attributes["audit.resource_type"] == "strategy"
    assert event.attributes["audit.resource_id"] == "st-1"
    assert event.attributes["audit.id"] == entry_id
    assert AuditLog.objects.get(pk=entry_id).trace_id == expected_trace


def test_own_span_when_none_is_recording(span_exporter):
    entry_id = audit_log(**entry_kwargs())
    spans = [s for s in span_exporter.get_finished_spans() if s.name == "audit_log"]
    assert len(spans) == 1
    assert [e.name for e in spans[0].events] == ["audit_log"]
    stored = AuditLog.objects.get(pk=entry_id)
    assert stored.trace_id == format(spans[0].context.trace_id, "032x")


def test_explicit_trace_id_wins(tracer):
    with tracer.start_as_current_span("request"):
        entry_id = audit_log(**entry_kwargs(trace_id="AB" * 16))
    assert AuditLog.objects.get(pk=entry_id).trace_id == "ab" * 16


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"description": "bad\x00byte"}, "description", "NUL"),
        ({"actor_name": "Sa\x00rah"}, "actor_name", "NUL"),
        ({"resource_name": "plan \ud800"}, "resource_name", "surrogate"),
        ({"before": {"k\x00": 1}}, "before", "NUL"),
        ({"after": {"list": ["ok", "no\x00"]}}, "after", "NUL"),
        ({"after": {"text": "\udfff"}}, "after", "surrogate"),
    ],
)
def test_text_no_store_can_hold_is_refused_with_the_field(overrides, field, problem):
    """Refused at the call, not by the store: a NUL or a lone surrogate would
    fail the writer's whole batch on PostgreSQL, and every replay of it."""
    with pytest.raises(ValueError, match=f"{field} contains a.*{problem}"):
        audit_log(**entry_kwargs(**overrides))


def test_text_that_only_looks_like_a_nul_escape_is_kept():
    entry = build_entry(**entry_kwargs(after={"note": "\\u0000 written out"}))
    assert json.loads(entry["after"]) == {"note": "\\u0000 written out"}


# --- state limits (issue 13, point 5) ------------------------------------------------


def nested(depth: int, *, kind: str = "object"):
    value = "leaf"
    for _ in range(depth):
        value = {"level": value} if kind == "object" else [value]
    return value


@pytest.mark.parametrize("field", ["before", "after"])
@pytest.mark.parametrize("kind", ["object", "array"])
def test_a_state_nested_1000_levels_is_refused_naming_the_field(field, kind):
    # Before: json.dumps raised RecursionError out of audit_log() (issue 12).
    with pytest.raises(ValueError, match=rf"{field} is nested deeper than 64 levels"):
        build_entry(**entry_kwargs(**{field: nested(1000, kind=kind)}))


@pytest.mark.parametrize("field", ["before", "after"])
def test_depth_limit_is_64_levels(field):
    build_entry(**entry_kwargs(**{field: nested(64)}))
    build_entry(**entry_kwargs(**{field: nested(64, kind="array")}))
    with pytest.raises(ValueError, match=rf"audit_log\(\): {field} is nested deeper than 64"):
        build_entry(**entry_kwargs(**{field: nested(65)}))
    # Brackets inside strings are text, not nesting.
    build_entry(**entry_kwargs(**{field: {"note": "[" * 500 + '{"\\' * 100}}))


@pytest.mark.parametrize("field", ["before", "after"])
def test_size_limit_is_one_mebibyte_of_json(field):
    overhead = len(json.dumps({"blob": ""}))
    build_entry(**entry_kwargs(**{field: {"blob": "a" * (1024 * 1024 - overhead)}}))
    with pytest.raises(ValueError, match=rf"{field} is larger than 1,048,576 bytes"):
        build_entry(**entry_kwargs(**{field: {"blob": "a" * (1024 * 1024 - overhead + 1)}}))
    # Bytes, not characters: 300,000 three-byte characters are 900,000 bytes...
    build_entry(**entry_kwargs(**{field: {"blob": "€" * 300_000}}))
    # ...and 400,000 of them are too many, though fewer than a million characters.
    with pytest.raises(ValueError, match=rf"{field} is larger than"):
        build_entry(**entry_kwargs(**{field: {"blob": "€" * 400_000}}))
    with pytest.raises(ValueError, match=rf"{field} is larger than"):
        audit_log(**entry_kwargs(**{field: {"blob": "x" * 20_000_000}}))
