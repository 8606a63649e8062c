"""A structured diff of an entry's ``before`` and ``after`` states.

``diff_states(before, after)`` walks both JSON values together and returns one
``Change`` per leaf path: ``added``, ``removed``, ``changed`` (with old and new
value) or ``unchanged``. Objects are compared key by key, lists index by index;
when the type differs (an object became a string), the whole path is one
``changed``. Values under keys that look secret are masked, never shown
(the rule is ``dmobs.vocabulary``, the same for every screen and export).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditui.stored import SPACED, display_text, dumps

# The one secret rule (dmobs.vocabulary); these names stay importable from here.
from dmobs.vocabulary import (  # noqa: F401
    MASK,
    SECRET_KEY_PARTS,
    counts_tokens,
    is_masked,
    is_secret_key,
    mask_secrets,
)

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
UNCHANGED = "unchanged"

_MISSING = object()


@dataclass(frozen=True)
class Change:
    path: str
    kind: str
    old: str | None = None  # JSON text of the old value (None when absent)
    new: str | None = None
    masked: bool = False
    # Length of the whole JSON text when ``old``/``new`` show only its start.
    old_length: int = 0
    new_length: int = 0


# What one diff shows at most (the export always has the whole entry): rows per
# table, characters of one value, characters of one path.
MAX_ROWS = 1000
MAX_VALUE_CHARS = 2000
MAX_PATH_CHARS = 300


def _json(value: Any) -> str:
    # auditui.stored.dumps: BSON values as a person reads them, any depth.
    return display_text(dumps(value, sort_keys=True, separators=SPACED))


def _cut(text: str | None) -> tuple[str | None, int]:
    if text is None or len(text) <= MAX_VALUE_CHARS:
        return text, 0
    return text[:MAX_VALUE_CHARS], len(text)


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _same(old: Any, new: Any) -> bool:
    if type(old) is not type(new):
        return False
    try:
        return old == new
    except RecursionError:  # deep containers (a masked or type-changed path)
        return dumps(old, sort_keys=True) == dumps(new, sort_keys=True)


@dataclass(frozen=True)
class _Leaf:
    """A row found by the walk; its value texts are made only when it is shown."""

    path: str
    kind: str
    old: Any
    new: Any
    masked: bool

    def change(self) -> Change:
        old = None if self.old is _MISSING else (MASK if self.masked else _json(self.old))
        new = None if self.new is _MISSING else (MASK if self.masked else _json(self.new))
        old, old_length = _cut(old)
        new, new_length = _cut(new)
        path = display_text(self.path)
        if len(path) > MAX_PATH_CHARS:
            path = "…" + path[-(MAX_PATH_CHARS - 1) :]
        return Change(path, self.kind, old, new, self.masked, old_length, new_length)


def _leaves(before: Any, after: Any):
    """Every leaf path of the two states with how it changed, in document order.

    A stack instead of recursion, so no nesting depth can stop it: objects are
    compared key by key, lists index by index; a whole new (or removed) object
    or list is shown leaf by leaf; a type change is one ``changed`` row;
    values under secret-looking keys are masked, never walked.
    """
    stack = [("", before, after, False)]
    while stack:
        path, old, new, masked = stack.pop()
        if old is _MISSING and new is _MISSING:
            continue
        if not masked and (
            (isinstance(old, dict) and isinstance(new, dict))
            or (isinstance(old, list) and isinstance(new, list))
        ):
            if isinstance(old, dict):
                keys = list(old) + [k for k in new if k not in old]
                children = [(str(k), old.get(k, _MISSING), new.get(k, _MISSING)) for k in keys]
            else:
                length = max(len(old), len(new))
                children = [
                    (i, old[i] if i < len(old) else _MISSING, new[i] if i < len(new) else _MISSING)
                    for i in range(length)
                ]
            if not children:
                yield _Leaf(path or "(value)", UNCHANGED, old, new, False)
            for key, child_old, child_new in reversed(children):
                present = [v for v in (child_old, child_new) if v is not _MISSING]
                child_masked = isinstance(key, str) and is_masked(key, *present)
                stack.append((_join(path, key), child_old, child_new, child_masked))
            continue
        if not masked and old is _MISSING and _container(new) and new:
            # A whole new object or list: show each leaf as added.
            stack.append((path, {} if isinstance(new, dict) else [], new, False))
            continue
        if not masked and new is _MISSING and _container(old) and old:
            stack.append((path, old, {} if isinstance(old, dict) else [], False))
            continue
        label = path or "(value)"
        if old is _MISSING:
            yield _Leaf(label, ADDED, old, new, masked)
        elif new is _MISSING:
            yield _Leaf(label, REMOVED, old, new, masked)
        elif _same(old, new):
            yield _Leaf(label, UNCHANGED, old, new, masked)
        else:
            yield _Leaf(label, CHANGED, old, new, masked)


def _sides(before: Any, after: Any) -> tuple[Any, Any]:
    return (_MISSING if before is None else before, _MISSING if after is None else after)


def diff_states(before: Any, after: Any) -> list[Change]:
    """Every leaf path of ``before``/``after`` with how it changed.

    ``None`` (no state recorded) on one side makes every path of the other side
    added or removed; ``None`` on both sides gives no changes.
    """
    return [leaf.change() for leaf in _leaves(*_sides(before, after))]


@dataclass(frozen=True)
class DiffView:
    changes: list[Change]
    unchanged: list[Change]
    # Rows found beyond MAX_ROWS in each table (not shown; the export has them).
    hidden_changes: int = 0
    hidden_unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not self.changes and not self.unchanged

    @property
    def total_changes(self) -> int:
        return len(self.changes) + self.hidden_changes

    @property
    def total_unchanged(self) -> int:
        return len(self.unchanged) + self.hidden_unchanged

    @property
    def cut_values(self) -> bool:
        return any(c.old_length or c.new_length for c in (*self.changes, *self.unchanged))


def diff_view(before: Any, after: Any, *, max_rows: int = MAX_ROWS) -> DiffView:
    """Changes first (in document order), unchanged paths apart, for a collapsed toggle.

    At most ``max_rows`` rows per table and ``MAX_VALUE_CHARS`` per value are
    made (a 100,000-key state is counted, not rendered); the rest is counted in
    ``hidden_*`` and each cut value keeps its full length, for the notices.
    """
    changes: list[Change] = []
    unchanged: list[Change] = []
    hidden_changes = hidden_unchanged = 0
    for leaf in _leaves(*_sides(before, after)):
        if leaf.kind == UNCHANGED:
            if len(unchanged) < max_rows:
                unchanged.append(leaf.change())
            else:
                hidden_unchanged += 1
        elif len(changes) < max_rows:
            changes.append(leaf.change())
        else:
            hidden_changes += 1
    return DiffView(changes, unchanged, hidden_changes, hidden_unchanged)
