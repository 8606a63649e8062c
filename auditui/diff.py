"""A structured diff of an entry's ``before`` and ``after`` states.

``diff_states(before, after)`` walks both JSON values together and returns one
``Change`` per leaf path: ``added``, ``removed``, ``changed`` (with old and new
value) or ``unchanged``. Objects are compared key by key, lists index by index;
when the type differs (an object became a string), the whole path is one
``changed``. Values under keys that look secret are masked, never shown
(the rule is ``dmobs.masking``, the same for every screen and export).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The one secret rule (dmobs.masking); these names stay importable from here.
from dmobs.masking import (  # noqa: F401
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


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _shown(value: Any, masked: bool) -> str | None:
    if value is _MISSING:
        return None
    return MASK if masked else _json(value)


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _walk(path: str, old: Any, new: Any, masked: bool, out: list[Change]) -> None:
    if old is _MISSING and new is _MISSING:
        return
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
            out.append(Change(path or "(value)", UNCHANGED, _json(old), _json(new)))
        for key, child_old, child_new in children:
            present = [v for v in (child_old, child_new) if v is not _MISSING]
            child_masked = isinstance(key, str) and is_masked(key, *present)
            _walk(_join(path, key), child_old, child_new, child_masked, out)
        return
    if not masked and old is _MISSING and _container(new) and new:
        # A whole new object or list: show each leaf as added.
        _expand(path, new, ADDED, out)
        return
    if not masked and new is _MISSING and _container(old) and old:
        _expand(path, old, REMOVED, out)
        return
    label = path or "(value)"
    if old is _MISSING:
        out.append(Change(label, ADDED, None, _shown(new, masked), masked))
    elif new is _MISSING:
        out.append(Change(label, REMOVED, _shown(old, masked), None, masked))
    elif type(old) is type(new) and old == new:
        out.append(Change(label, UNCHANGED, _shown(old, masked), _shown(new, masked), masked))
    else:
        out.append(Change(label, CHANGED, _shown(old, masked), _shown(new, masked), masked))


def _expand(path: str, value: Any, kind: str, out: list[Change]) -> None:
    if kind == ADDED:
        _walk(path, {} if isinstance(value, dict) else [], value, False, out)
    else:
        _walk(path, value, {} if isinstance(value, dict) else [], False, out)


def diff_states(before: Any, after: Any) -> list[Change]:
    """Every leaf path of ``before``/``after`` with how it changed.

    ``None`` (no state recorded) on one side makes every path of the other side
    added or removed; ``None`` on both sides gives no changes.
    """
    old = _MISSING if before is None else before
    new = _MISSING if after is None else after
    out: list[Change] = []
    _walk("", old, new, False, out)
    return out


@dataclass(frozen=True)
class DiffView:
    changes: list[Change]
    unchanged: list[Change]

    @property
    def empty(self) -> bool:
        return not self.changes and not self.unchanged


def diff_view(before: Any, after: Any) -> DiffView:
    """Changes first (in document order), unchanged paths apart, for a collapsed toggle."""
    all_changes = diff_states(before, after)
    return DiffView(
        changes=[c for c in all_changes if c.kind != UNCHANGED],
        unchanged=[c for c in all_changes if c.kind == UNCHANGED],
    )
