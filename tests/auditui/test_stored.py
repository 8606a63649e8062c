"""auditui.stored: stored values made fit to show, without recursion."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from bson import Binary, DatetimeMS, Decimal128, Int64, ObjectId, Regex
from hypothesis import given, settings
from hypothesis import strategies as st

from auditui import diff, stored
from dmobs.fields import UnparsedJSON, tolerant_converter
from dmobs.models import AuditLog

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(value=json_values)
def test_iterative_json_agrees_with_the_json_module(value):
    text = json.dumps(value, ensure_ascii=False)
    assert stored._loads_iterative(text) == json.loads(text)
    assert stored._dumps_iterative(value, sort_keys=False, separators=stored.SPACED) == text
    assert stored.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert stored.masked(value) == diff.mask_secrets(value)


def test_any_depth_round_trips():
    text = '{"a":[' * 50_000 + "1" + "]}" * 50_000
    value = stored.loads(text)  # json.loads raises RecursionError here
    assert stored.dumps(value) == text
    assert stored.dumps(stored.masked(value)) == text
    changes = diff.diff_view(value, {"a": []})
    assert changes.changes[0].path.startswith("…") and len(changes.changes[0].path) <= 300


def test_not_json_is_kept_as_text():
    assert stored.loads("{not json") == "{not json"
    assert stored.loads("[1, 2") == "[1, 2"


def test_bson_values_as_a_person_reads_them():
    state = {
        "id": ObjectId("65f000000000000000000abc"),
        "at": datetime(2026, 1, 31, 12, 30, 45, 123456),  # BSON: naive UTC
        "price": Decimal128("1234.50"),
        "nan": Decimal128("NaN"),
        "big": Int64(9007199254740993),
        "bytes": Binary(b"\x00\x01"),
        "uuid": Binary(uuid.UUID(int=1).bytes, 4),
        "far": DatetimeMS(253402300800000),
        "re": Regex("^a", "i"),
        "inf": float("inf"),
    }
    value = stored.json_value(state)
    assert value == {
        "id": "65f000000000000000000abc",
        "at": "2026-01-31T12:30:45.123Z",
        "price": Decimal("1234.50"),
        "nan": "NaN",
        "big": 9007199254740993,
        "bytes": "base64:AAE=",
        "uuid": str(uuid.UUID(int=1)),
        "far": "DatetimeMS(253402300800000)",
        "re": str(Regex("^a", "i")),
        "inf": "inf",
    }
    text = stored.dumps(value)
    assert '"price":1234.50' in text and json.loads(text)["big"] == 9007199254740993


def test_export_text_is_utf8_and_one_line():
    text = stored.dumps({"k\ud800": "a\udfff\x85\u2028\u2029"})
    out = stored.json_export_text(text)
    out.encode("utf-8")
    assert "\n" not in out and len(out.splitlines()) == 1
    assert json.loads(out) == {"k\ud800": "a\udfff\x85\u2028\u2029"}
    assert stored.display_text("a\ud800b") == "a\ufffdb"


def test_tidy_entry_names_every_problem():
    entry = AuditLog(
        id="65f000000000000000000abc",
        tenant_id=ObjectId("65f000000000000000000def"),
        actor_type=5,
        actor_id="a",
        actor_name=None,
        action="autoActivated",
        resource_type="x",
        resource_id=77,
        description={"text": "object"},
        before=UnparsedJSON('{"a":' * 2000 + "1" + "}" * 2000),
        after=None,
        created_at=DatetimeMS(253402300800000),
    )
    stored.tidy_entry(entry)
    assert entry.tenant_id == "65f000000000000000000def"
    assert entry.actor_type == "5" and entry.resource_id == "77"
    assert entry.description == '{"text":"object"}'
    assert entry.created_at is None and isinstance(entry.stored_created_at, DatetimeMS)
    assert isinstance(entry.before, dict)
    assert entry.problems == [
        "actorType is stored as a number, not text",
        "actorName is missing",
        "resourceId is stored as a number, not text",
        "description is stored as an object, not text",
        "createdAt is stored as a DatetimeMS (DatetimeMS(253402300800000)), not a date: "
        "the entry has no place in the time order of the lists",
    ]


def test_a_well_formed_entry_has_no_problems():
    entry = AuditLog(
        id="65f000000000000000000abc",
        tenant_id=None,
        actor_type="human",
        actor_id="u",
        actor_name="U",
        action="created",
        resource_type="user",
        resource_id="r",
        description="d",
        created_at=datetime.now(UTC),
    )
    assert stored.tidy_entry(entry).problems == []


@pytest.mark.parametrize("json_field", [True, False])
def test_tolerant_converter_keeps_the_stored_value(json_field):
    def failing(value, expression, connection):
        raise RecursionError if json_field else AttributeError

    convert = tolerant_converter(failing, json_field=json_field)
    result = convert("raw", None, None)
    assert result == "raw"
    assert isinstance(result, UnparsedJSON) is json_field
    assert tolerant_converter(lambda v, e, c: None, json_field=False)("x", None, None) == "x"
    assert tolerant_converter(lambda v, e, c: None, json_field=True)("null", None, None) is None


def test_nan_and_infinity_are_written_as_valid_json():
    # SQLite keeps the JSON text it is given, and json.loads reads NaN/Infinity.
    value = stored.loads('{"a": NaN, "b": [Infinity, -Infinity], "c": 1.5}')
    text = stored.dumps(value)
    assert json.loads(text, parse_constant=pytest.fail) == {
        "a": "nan",
        "b": ["inf", "-inf"],
        "c": 1.5,
    }
    deep = stored.loads('{"a":' * 3000 + "NaN" + "}" * 3000)
    assert "NaN" not in stored.dumps(deep) and '"nan"' in stored.dumps(deep)
