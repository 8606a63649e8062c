"""The PostgreSQL CSV export's chunk-level secret check (auditui.export._texts_to_mask,
over a chunk's before or after texts as PostgreSQL joins them) flags exactly the
texts the per-text quick check flags, which in turn flags every text
dmobs.vocabulary would change (issue 12: one masking rule). Pure Python: runs on
every database backend."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from auditui import export
from dmobs.vocabulary import SECRET_KEY_PARTS, mask_secrets
from tests.auditui.test_masking import any_key, disguised_secret

plain_key = st.sampled_from(["status", "title", "owner", "inputTokens", "maxTokens", "Passport"])
key = st.one_of(plain_key, any_key, disguised_secret(), st.sampled_from(SECRET_KEY_PARTS))
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=12), key
)
state = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(key, inner, max_size=4)),
    max_leaves=8,
)


def jsonb_text(value) -> str:
    # PostgreSQL's jsonb output: ", " and ": " separators, no ASCII escapes.
    return json.dumps(value, ensure_ascii=False)


def checked(value) -> str:
    return jsonb_text(value) if isinstance(value, dict | list) else ""


@given(st.lists(st.tuples(state, state), min_size=1, max_size=12))
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_the_chunk_check_flags_every_row_the_per_text_check_flags(pairs):
    befores, afters = ([checked(pair[side]) for pair in pairs] for side in (0, 1))
    flagged = {*export._texts_to_mask(joined(befores)), *export._texts_to_mask(joined(afters))}
    for index, (before, after) in enumerate(pairs):
        per_text = any(t and export._may_hold_secret(t) for t in (befores[index], afters[index]))
        masks = any(isinstance(v, dict | list) and mask_secrets(v) != v for v in (before, after))
        assert not masks or per_text, (before, after)  # the quick check misses no secret
        assert (index in flagged) == per_text, (index, before, after)


def joined(texts: list[str]) -> bytes:
    """The texts as PostgreSQL's string_agg sends them (UTF-8, one separator between)."""
    return export._SEP.join(t.encode() for t in texts)


def test_texts_are_told_apart_by_the_separators_only():
    """Empty texts (not objects or arrays) keep their place; a secret name split
    over two texts is no hit; hits in several texts of one chunk all count."""
    texts = ["", '{"pass": 1}', '{"word": 2}', "", '{"apiKey": "k"}', "[]"]
    texts += ['{"Zoë": 1}', '{"a\\nb": 0}']  # another script, an escape
    assert export._texts_to_mask(joined(texts)) == [4, 6, 7]
    assert export._texts_to_mask(joined(["", ""])) == []


def marked(cells: list[str]) -> bytes:
    """A record as ``export._line_sql`` writes it: a before/after object or array
    between JSON marks, every other cell between an opening and a closing mark,
    nothing guarded, no quote doubled."""
    json_cells = {export.STORED_NAMES.index(name) for name in ("before", "after")}
    out = []
    for index, cell in enumerate(cells):
        is_object = index in json_cells and cell.startswith(("{", "["))
        out.append(f"\x1e{cell}\x1e" if is_object else f"\x1c{cell}\x1f")
    return (",".join(out) + "\r\n").encode()


def test_a_cell_that_holds_a_mark_sends_its_chunk_to_python():
    """A chunk is taken as PostgreSQL wrote it only when it holds exactly its
    cells' marks; otherwise its rows are written by ``_line``."""
    cells = ["x"] * len(export.STORED_NAMES)
    cells[export.STORED_NAMES.index("after")] = '{"a": 1}'
    record = marked(cells)

    def chunk(records: bytes) -> export.Chunk:
        return export.Chunk(records, 2, lambda: b"in python")

    assert export._chunk_bytes(chunk(record * 2)).startswith(b'"x","x"')
    for mark in (b"\x1c", b"\x1f", b"\x1e", b"\x1e\x1e", b"\x1c\x1f"):
        assert export._chunk_bytes(chunk(record.replace(b"x", b"x" + mark, 1) * 2)) == b"in python"


def test_the_records_are_guarded_and_quoted_as_the_python_lines():
    rows = [[f'{name} "{i}", \'""\r\n' for name in export.STORED_NAMES] for i in range(3)]
    rows[1][export.STORED_NAMES.index("after")] = '{"a": "=b"}'
    for index, trigger in enumerate(["=", "+", "-", "@", "\t", "\r", "'="]):
        rows[2][index] = trigger + rows[2][index]
    records = b"".join(marked(row) for row in rows)
    assert export._as_csv(records) == "".join(export._line(tuple(row)) for row in rows).encode()
