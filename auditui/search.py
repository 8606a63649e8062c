"""The search box's qualifiers: ``actor:ID action:NAME type:agent resource:TYPE/ID
tenant:SLUG trace:ID created:>=2026-11-01 created:2026-11-01..2026-11-15`` and free
words for the text search.

Each qualifier is declared on its filter (``Filter.qualifier`` in
``auditui.filters``); a qualifier search is rewritten into the same query
parameters the controls set (``expand_search``), so it is bookmarkable, costs
what the dropdown filters cost, and can only narrow the scope like them.
Values may be quoted (``actor:"Ada Lovelace"``); a 32-hex-digit word is a trace id.
A ``-`` before a qualifier excludes (``-action:logged_in``): it becomes the filter's
``not_<qualifier>`` parameter, repeatable (``Filter.exclude_key``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.http import QueryDict

from auditui.errors import InvalidParams
from auditui.filters import FILTERS, PERIOD, RESOURCE_ID, RESOURCE_TYPE, SEARCH, TRACE, URL_ORDER

# qualifier name -> filter (declared on the filters themselves).
QUALIFIERS = {f.qualifier: f for f in FILTERS if f.qualifier}
# The box holds qualifiers as well as words: the words alone keep q's own limit.
MAX_BOX = 1000
TOKEN_RE = re.compile(r'\s*(-?)(?:([A-Za-z_]+):)?("(?:[^"\\]|\\.)*"?|\S*)')
TRACE_WORD_RE = re.compile(r"^[0-9a-fA-F]{32}$")
DAY = r"\d{4}-\d{2}-\d{2}"
CREATED_RE = re.compile(rf"^(?:(>=|<=|>|<)({DAY})|({DAY})\.\.({DAY})|({DAY}))$")


@dataclass(frozen=True)
class Token:
    text: str  # as typed, for error messages
    qualifier: str  # "" for a free word
    value: str
    negated: bool = False


def tokens(text: str) -> list[Token]:
    """The box's words: ``[-]qualifier:value`` or free words; quotes group spaces."""
    result = []
    pos = 0
    while pos < len(text):
        match = TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        negated, qualifier, raw = match.group(1), match.group(2) or "", match.group(3)
        if not qualifier and not raw:
            if negated:
                result.append(Token("-", "", "-"))
            continue
        typed = match.group(0).strip()
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"') or raw.endswith('\\"'):
                raise InvalidParams(f"Search: the quote in `{typed}` is never closed.")
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if not qualifier:
            raw = f"-{raw}" if negated else raw
            negated = ""
        result.append(Token(typed, qualifier.lower(), raw, bool(negated)))
    return result


def _unknown(token: Token) -> InvalidParams:
    close = difflib.get_close_matches(token.qualifier, [*QUALIFIERS], n=1, cutoff=0.6)
    hint = f" — did you mean `{close[0]}:`?" if close else ""
    known = ", ".join(f"{name}:" for name in QUALIFIERS)
    return InvalidParams(f"Search: unknown qualifier `{token.qualifier}:`{hint} (known: {known}).")


def _created(token: Token) -> dict[str, str]:
    match = CREATED_RE.match(token.value)
    if match is None:
        raise InvalidParams(
            f"Search: `{token.text}` — created: takes a day like created:2026-11-01, "
            "created:>=2026-11-01 or created:2026-11-01..2026-11-15."
        )
    op, day, start, end, exact = match.groups()
    if exact:
        return {PERIOD.from_key: exact, PERIOD.to_key: exact}
    if start:
        return {PERIOD.from_key: start, PERIOD.to_key: end}
    # Whole days: ">" starts the day after, "<" ends the day before (checked as dates later).
    if op in (">=", ">"):
        return {PERIOD.from_key: day, "_strict_from": "1" if op == ">" else ""}
    return {PERIOD.to_key: day, "_strict_to": "1" if op == "<" else ""}


def qualifier_params(text: str) -> tuple[dict[str, str], str]:
    """``(query parameters, free words)`` of a search box's text.

    Raises ``InvalidParams`` naming the token for an unknown qualifier, an empty
    value, a negated ``created:`` or a qualifier given twice with different values.
    Exclusions (``-action:a -action:b``) collect into a list per ``not_`` key.
    """
    params: dict[str, Any] = {}
    words: list[str] = []
    for token in tokens(text):
        if not token.qualifier:
            if TRACE_WORD_RE.match(token.value):
                found = {TRACE.key: token.value.lower()}
            else:
                words.append(token.value)
                continue
        else:
            flt = QUALIFIERS.get(token.qualifier)
            if flt is None:
                raise _unknown(token)
            if not token.value:
                raise InvalidParams(f"Search: `{token.text}` needs a value after the colon.")
            if token.negated:
                if not flt.exclude_key:
                    raise InvalidParams(
                        f"Search: `{token.text}` — {token.qualifier}: cannot be negated; "
                        "say the days to keep (created:<2026-11-01 or created:>2026-11-15)."
                    )
                if flt is RESOURCE_TYPE and token.value.endswith("/"):
                    raise InvalidParams(f"Search: `{token.text}` needs an id after the slash.")
                excluded = params.setdefault(flt.exclude_key, [])
                if token.value not in excluded:
                    excluded.append(token.value)
                continue
            if flt is PERIOD:
                found = _created(token)
            elif flt is RESOURCE_TYPE and "/" in token.value:
                kind, _, ident = token.value.partition("/")
                if not ident:
                    raise InvalidParams(f"Search: `{token.text}` needs an id after the slash.")
                # ``resource:/ID``: an id of any resource type.
                found = {RESOURCE_ID.key: ident, **({RESOURCE_TYPE.key: kind} if kind else {})}
            else:
                found = {flt.key: token.value}
        for key, value in found.items():
            if key in params and params[key] != value:
                raise InvalidParams(
                    f"Search: `{token.text}` conflicts with an earlier {token.qualifier or key}: "
                    f"({params[key]!r})."
                )
            params[key] = value
    return params, " ".join(words)


def expand_search(query: QueryDict) -> QueryDict:
    """``query`` with the search box's qualifiers moved onto the filters' own keys.

    A qualifier and a control that disagree are a 400 (the box and the controls
    describe one view). Without qualifiers the query is returned as it is.
    """
    text = query.get(SEARCH.key, "")
    if len(text) > MAX_BOX:
        raise InvalidParams(f"The search is longer than {MAX_BOX} characters.")
    if ":" not in text and not TRACE_WORD_RE.search(text) and '"' not in text:
        return query
    found, words = qualifier_params(text)
    if not found and words == text.strip():
        return query
    expanded = query.copy()
    expanded[SEARCH.key] = words
    for key in ("_strict_from", "_strict_to"):
        strict = found.pop(key, "")
        target = PERIOD.from_key if key == "_strict_from" else PERIOD.to_key
        if strict:
            try:
                day = date.fromisoformat(found[target])
            except ValueError:
                raise InvalidParams(f"Search: {found[target]!r} is not a day.") from None
            step = timedelta(days=1 if target == PERIOD.from_key else -1)
            found[target] = (day + step).isoformat()
    for flt in FILTERS:
        if flt.exclude_key in found:
            # Exclusions add up: the box's and any already in the URL (hidden fields).
            values = query.getlist(flt.exclude_key) + found.pop(flt.exclude_key)
            expanded.setlist(flt.exclude_key, list(dict.fromkeys(values)))
    for key, value in found.items():
        given = query.get(key, "").strip()
        if given and given != value:
            raise InvalidParams(
                f"Search: {key}={value!r} from the search box disagrees with the "
                f"{key!r} filter ({given!r})."
            )
        expanded[key] = value
    if PERIOD.from_key in found or PERIOD.to_key in found:
        expanded.pop(PERIOD.key, None)
    return expanded


def quoted(value: str) -> str:
    """A qualifier's value as typed: quoted when it has spaces or quotes."""
    if value and not re.search(r'[\s"\\]', value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def box_text(params) -> str:
    """What the search box shows for ``params``: a qualifier per filter set (the
    controls' values), then the free words. ``qualifier_params`` reads it back."""
    parts = []
    for flt in URL_ORDER:
        if flt is SEARCH or flt is RESOURCE_ID:
            continue
        if flt is PERIOD:
            start, end = params.date_from, params.date_to
            if start and end:
                day = start.isoformat()
                parts.append(
                    f"created:{day}" if start == end else f"created:{day}..{end.isoformat()}"
                )
            elif start:
                parts.append(f"created:>={start.isoformat()}")
            elif end:
                parts.append(f"created:<={end.isoformat()}")
            continue
        value = getattr(params, flt.attr)
        if flt is RESOURCE_TYPE and params.resource_id:
            value = f"{value}/{params.resource_id}"
        if value:
            parts.append(f"{flt.qualifier}:{quoted(value)}")
        for excluded in params.excluded.get(flt.exclude_key, ()):
            parts.append(f"-{flt.qualifier}:{quoted(excluded)}")
    if params.q:
        parts.append(params.q)
    return " ".join(parts)
