"""dmobs.vocabulary: each word both wings use is defined once, and used.

The duplicates issue 15 found (actor types in four places, two action-name
patterns, the trace-id rule re-implemented, CSV triggers and username limits
twice) must not come back: no other module of the product defines these names
or spells out their values.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dmobs import vocabulary

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = sorted(
    p
    for package in ("dmobs", "auditui")
    for p in (ROOT / package).rglob("*.py")
    if "migrations" not in p.parts and p != ROOT / "dmobs" / "vocabulary.py"
)
WORDS = (
    "ACTOR_TYPES",
    "NAME_RE",
    "TRACE_ID_RE",
    "ZERO_TRACE_ID",
    "CSV_TRIGGERS",
    "MAX_USERNAME",
    "SECRET_KEY_PARTS",
    "MASK",
)


def _module_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _literals(path: Path) -> list[tuple]:
    """Every tuple/list/set of constants spelled out in the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Tuple | ast.List | ast.Set)
            and node.elts
            and all(isinstance(e, ast.Constant) for e in node.elts)
        ):
            found.append(tuple(sorted(str(e.value) for e in node.elts)))
    return found


def test_the_product_is_scanned():
    assert len(PRODUCT) > 50
    assert ROOT / "auditui" / "query.py" in PRODUCT


@pytest.mark.parametrize("word", WORDS)
def test_no_other_module_defines_a_word_of_the_vocabulary(word):
    assert hasattr(vocabulary, word)
    others = [str(p.relative_to(ROOT)) for p in PRODUCT if word in _module_level_names(p)]
    assert others == [], f"{word} is defined outside dmobs/vocabulary.py"


@pytest.mark.parametrize("rule", ["is_valid_trace_id", "mask_secrets", "is_masked"])
def test_no_other_module_defines_a_rule_of_the_vocabulary(rule):
    others = [str(p.relative_to(ROOT)) for p in PRODUCT if rule in _module_level_names(p)]
    assert others == []


@pytest.mark.parametrize(
    "values", [vocabulary.ACTOR_TYPES, vocabulary.CSV_TRIGGERS], ids=["actor types", "triggers"]
)
def test_no_other_module_spells_out_the_values(values):
    wanted = tuple(sorted(values))
    others = [str(p.relative_to(ROOT)) for p in PRODUCT if wanted in _literals(p)]
    assert others == []


def test_the_trace_id_rule():
    assert vocabulary.is_valid_trace_id("0af7651916cd43dd8448eb211c80319c")
    assert not vocabulary.is_valid_trace_id(vocabulary.ZERO_TRACE_ID)
    assert not vocabulary.is_valid_trace_id("0AF7651916CD43DD8448EB211C80319C")
    assert not vocabulary.is_valid_trace_id("0af7651916cd43dd8448eb211c80319c\n")
    assert not vocabulary.is_valid_trace_id(None)
