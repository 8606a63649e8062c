"""Any stored entry, made fit to show: the read side's answer to "what can be in
``audit_logs``".

The screens read entries other writers stored too: the platform's Node services
(BSON types in the states, ObjectId ids, fields left out), older versions, a
person with a database shell. Nothing here may raise on a stored value, and
nothing here recurses, so a state nested 100,000 levels deep is only slow:

* ``tidy_entry()``: one loaded entry, with every text field text (an ObjectId
  as its hex, a number as its digits, a missing field ``None``), ``createdAt``
  a date or ``None`` (the stored value kept in ``stored_created_at``), the
  states JSON values (BSON types as a person reads them) and a list of
  ``problems`` for the detail page to show.
* ``loads()``/``dumps()``: JSON text to value and back, the C ``json`` module
  first and a loop without recursion when a value is too deep for it.
* ``masked()``: a copy of a state with secret-looking keys masked, without
  recursion; the rule itself is ``dmobs.vocabulary.is_masked``.
* ``display_text()`` / ``export_text()``: text that can be encoded as UTF-8
  (lone surrogates, which no encoder takes, become U+FFFD, or ``\\udXXX``
  escapes inside JSON so an export keeps the exact value).
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dmobs.fields import UnparsedJSON
from dmobs.vocabulary import MASK, is_masked

# Text fields of an entry (python name, stored name) and which of them every
# entry must have (dmobs.audit.build_entry requires them).
TEXT_FIELDS = (
    ("tenant_id", "tenantId"),
    ("actor_type", "actorType"),
    ("actor_id", "actorId"),
    ("actor_name", "actorName"),
    ("action", "action"),
    ("resource_type", "resourceType"),
    ("resource_id", "resourceId"),
    ("resource_name", "resourceName"),
    ("description", "description"),
    ("trace_id", "traceId"),
)
REQUIRED = frozenset(
    {
        "actor_type",
        "actor_id",
        "actor_name",
        "action",
        "resource_type",
        "resource_id",
        "description",
    }
)
STATES = ("before", "after")

_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text for export also the characters line splitters take for a line end
# (NEL, LINE/PARAGRAPH SEPARATOR): one NDJSON record stays one line for any reader.
_EXPORT_ESCAPED = re.compile("[\ud800-\udfff\x85\u2028\u2029]")
REPLACEMENT = "\ufffd"


def display_text(text: str) -> str:
    """``text`` with lone surrogates (not encodable as UTF-8) as U+FFFD."""
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def json_export_text(text: str) -> str:
    """JSON text with lone surrogates (and NEL, U+2028, U+2029) written as
    ``\\uXXXX`` escapes: valid UTF-8, one line, and the parsed value is exactly
    the stored one. (In JSON text these characters can only be inside a string,
    where the escape means the same.)"""
    if text.isascii():
        return text
    return _EXPORT_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# --- scalars as a person reads them ------------------------------------------------


def time_text(value: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z`` (a naive time is UTC, as BSON's)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def _bson_scalar(value: Any) -> Any:
    """A BSON value (or any non-JSON one) as a JSON value: ObjectId -> hex,
    date -> ISO-8601 UTC, Decimal128 -> exact ``Decimal``, Int64 -> int,
    binary -> UUID text or ``base64:...``; anything else its text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)  # Int64 and friends: plain int
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, datetime):
        try:
            return time_text(value)
        except (OverflowError, ValueError):
            return str(value)
    type_name = type(value).__name__
    if type_name == "Decimal128":
        number = value.to_decimal()
        return number if number.is_finite() else str(number)
    if type_name == "ObjectId":
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        subtype = getattr(value, "subtype", 0)
        if subtype in (3, 4) and len(data) == 16:
            return str(uuid.UUID(bytes=data))
        return "base64:" + base64.b64encode(data).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if type_name == "Timestamp":
        return _bson_scalar(value.as_datetime())
    if type_name == "DatetimeMS":
        return f"DatetimeMS({int(value)})"
    return str(value)


def _is_json_scalar(value: Any) -> bool:
    return (
        value is None
        or type(value) in (str, int, bool)
        or (type(value) is float and math.isfinite(value))
    )


# --- copies without recursion ------------------------------------------------------


def _rebuild(value: Any, *, scalar, mask: bool) -> Any:
    """A copy of ``value``: dicts and lists rebuilt with a stack (no recursion),
    every other value through ``scalar``; with ``mask``, the values of
    secret-looking keys replaced as ``dmobs.vocabulary`` decides."""
    if not isinstance(value, dict | list | tuple):
        return scalar(value)

    def new(container):
        return {} if isinstance(container, dict) else []

    def items(container):
        return iter(container.items()) if isinstance(container, dict) else iter(container)

    root = new(value)
    stack = [(items(value), root)]
    while stack:
        source, out = stack[-1]
        for item in source:
            if isinstance(out, dict):
                key, child = item
                if not isinstance(key, str):
                    key = str(_bson_scalar(key))
                if mask and is_masked(key, child):
                    out[key] = MASK
                    continue
            else:
                child = item
            if isinstance(child, dict | list | tuple):
                copy = new(child)
                if isinstance(out, dict):
                    out[key] = copy
                else:
                    out.append(copy)
                stack.append((items(child), copy))
                break
            shown = scalar(child)
            if isinstance(out, dict):
                out[key] = shown
            else:
                out.append(shown)
        else:
            stack.pop()
    return root


def json_value(value: Any) -> Any:
    """A stored state as a JSON value (BSON types as a person reads them)."""
    if isinstance(value, UnparsedJSON):
        value = loads(value)
    if _is_json_scalar(value):
        return value
    return _rebuild(value, scalar=_bson_scalar, mask=False)


def masked(value: Any) -> Any:
    """A copy of a state with the values of secret-looking keys masked (the rule
    of ``dmobs.vocabulary.is_masked``), for any depth."""
    if not isinstance(value, dict | list):
        return value
    return _rebuild(value, scalar=lambda v: v, mask=True)


# --- JSON text without recursion -------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
# json.loads also takes these (Python's json writes them for float specials).
_LITERALS = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def loads(text: str) -> Any:
    """JSON text to a value; one too deep for ``json.loads`` is parsed with a
    stack. Text that is not JSON at all is returned as it is (a string)."""
    try:
        return json.loads(text)
    except RecursionError:
        pass
    except ValueError:
        return str(text)
    try:
        return _loads_iterative(text)
    except ValueError:
        return str(text)


def _loads_iterative(text: str) -> Any:
    scan_string = json.decoder.scanstring
    stack: list[tuple[Any, str | None]] = []  # (container, pending key)
    pos = _WS.match(text, 0).end()
    result: Any = None
    done = False

    def attach(value: Any) -> None:
        nonlocal result, done
        if not stack:
            result, done = value, True
            return
        container, key = stack[-1]
        if isinstance(container, list):
            container.append(value)
        else:
            container[key] = value

    while not done:
        if pos >= len(text):
            raise ValueError("unexpected end of JSON text")
        char = text[pos]
        if stack and isinstance(stack[-1][0], dict) and stack[-1][1] is None:
            # Expecting a key (or the end of the object).
            if char == "}":
                container, _ = stack.pop()
                pos += 1
                attach(container)
            else:
                if char != '"':
                    raise ValueError(f"expected a key at {pos}")
                key, pos = scan_string(text, pos + 1)
                pos = _WS.match(text, pos).end()
                if text[pos : pos + 1] != ":":
                    raise ValueError(f"expected ':' at {pos}")
                pos = _WS.match(text, pos + 1).end()
                stack[-1] = (stack[-1][0], key)
                continue
        elif char == "{":
            stack.append(({}, None))
            pos += 1
            pos = _WS.match(text, pos).end()
            continue
        elif char == "[":
            stack.append(([], None))
            pos = _WS.match(text, pos + 1).end()
            if text[pos : pos + 1] == "]":
                container, _ = stack.pop()
                pos += 1
                attach(container)
            else:
                continue
        elif char == "]" and stack and isinstance(stack[-1][0], list):
            container, _ = stack.pop()
            pos += 1
            attach(container)
        elif char == '"':
            value, pos = scan_string(text, pos + 1)
            attach(value)
        else:
            number = _NUMBER.match(text, pos)
            if number:
                literal = number.group()
                value = int(literal) if literal.lstrip("-").isdigit() else float(literal)
                pos = number.end()
                attach(value)
            else:
                for word, value in _LITERALS.items():
                    if text.startswith(word, pos):
                        pos += len(word)
                        attach(value)
                        break
                else:
                    raise ValueError(f"unexpected {char!r} at {pos}")
        # After a value: a comma, or the end of the container.
        pos = _WS.match(text, pos).end()
        if done or not stack:
            continue
        container, _key = stack[-1]
        if isinstance(container, dict):
            stack[-1] = (container, None)
        if text[pos : pos + 1] == ",":
            pos = _WS.match(text, pos + 1).end()
            if isinstance(container, dict) and text[pos : pos + 1] != '"':
                raise ValueError(f"expected a key at {pos}")
        elif text[pos : pos + 1] not in ("}", "]"):
            raise ValueError(f"expected ',' at {pos}")
    if _WS.match(text, pos).end() != len(text):
        raise ValueError("extra data after the JSON value")
    return result


# Decimals are written as JSON numbers with every stored digit: json.dumps takes
# them through ``default`` as marked strings, and the marks are removed after.
_DECIMAL_MARK = re.compile('"\ue000([-+0-9.eE]+)\ue001"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return f"\ue000{value}\ue001"
    return _bson_scalar(value)


COMPACT = (",", ":")
SPACED = (", ", ": ")


def dumps(
    value: Any,
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = COMPACT,
    allow_nan: bool = False,
) -> str:
    """JSON text of a value (BSON types included); one too deep for the C
    encoder is written with a stack. Non-ASCII text stays as it is. NaN and
    Infinity are strings unless ``allow_nan`` (then Python's ``NaN``/``Infinity``,
    which are not JSON: for text a person reads, such as a CSV cell)."""
    options = {"separators": separators, "sort_keys": sort_keys, "default": _default}
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=allow_nan, **options)
    except RecursionError:
        text = _dumps_iterative(value, sort_keys=sort_keys, separators=separators)
    except ValueError:
        # NaN or Infinity (SQLite keeps whatever JSON text it is given): JSON has
        # no such numbers, so they are written as the strings json_value makes.
        text = dumps(json_value(value), sort_keys=sort_keys, separators=separators)
    if "\ue000" in text:
        text = _DECIMAL_MARK.sub(r"\1", text)
    return text


def _scalar_text(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # as json_value writes NaN and Infinity
    return json.dumps(value, ensure_ascii=False, default=_default)


def _dumps_iterative(value: Any, *, sort_keys: bool, separators: tuple[str, str] = COMPACT) -> str:
    item_sep, key_sep = separators
    parts: list[str] = []
    # Each frame: (iterator over children, is a dict, first child still to come).
    stack: list[list[Any]] = []

    def open_container(container) -> None:
        if isinstance(container, dict):
            keys = sorted(container, key=str) if sort_keys else list(container)
            parts.append("{")
            stack.append([iter((k, container[k]) for k in keys), True, True])
        else:
            parts.append("[")
            stack.append([iter(container), False, True])

    if not isinstance(value, dict | list | tuple):
        return _scalar_text(value)
    open_container(value)
    while stack:
        frame = stack[-1]
        source, is_dict, first = frame
        try:
            item = next(source)
        except StopIteration:
            stack.pop()
            parts.append("}" if is_dict else "]")
            continue
        if not first:
            parts.append(item_sep)
        frame[2] = False
        if is_dict:
            key, child = item
            parts.append(json.dumps(key if isinstance(key, str) else str(key), ensure_ascii=False))
            parts.append(key_sep)
        else:
            child = item
        if isinstance(child, dict | list | tuple):
            open_container(child)
        else:
            parts.append(_scalar_text(child))
    return "".join(parts)


# --- one loaded entry -------------------------------------------------------------


def _field_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return display_text(value)
    if isinstance(value, dict | list | tuple):
        return display_text(dumps(json_value(value)))
    shown = _bson_scalar(value)
    if isinstance(shown, str):
        return display_text(shown)
    return display_text(dumps(json_value(value)))


def tidy_entry(entry: Any, *, bson: bool = True) -> Any:
    """Make a loaded ``AuditLog`` safe to render and export (in place; returned).

    Sets ``entry.problems``: what is not as the platform writes entries, in
    words (empty for a well-formed entry). ``bson=False`` (a SQL store, whose
    states come from ``json.loads``) skips the copy that turns BSON values into
    JSON ones; text ``json.loads`` could not read is parsed either way.
    """
    problems: list[str] = []
    deferred = entry.get_deferred_fields()
    for name, stored in TEXT_FIELDS:
        if name in deferred:
            continue
        value = getattr(entry, name)
        text = _field_text(value)
        if value is not None and not isinstance(value, str) and type(value).__name__ != "ObjectId":
            problems.append(f"{stored} is stored as {_type_name(value)}, not text")
        elif name in REQUIRED and (text is None or not text.strip()):
            problems.append(f"{stored} is missing")
        setattr(entry, name, text)
    created = entry.created_at
    entry.stored_created_at = created
    if not isinstance(created, datetime) or created.tzinfo is None:
        entry.created_at = None
        if created is None:
            problems.append("createdAt is missing")
        else:
            shown = _field_text(created) or ""
            problems.append(
                f"createdAt is stored as {_type_name(created)} ({shortened(shown, 80)}), "
                "not a date: the entry has no place in the time order of the lists"
            )
    for name in STATES:
        if name not in deferred:
            value = getattr(entry, name)
            if bson or isinstance(value, UnparsedJSON):
                setattr(entry, name, json_value(value))
    entry.problems = problems
    return entry


def _type_name(value: Any) -> str:
    names = {
        int: "a number",
        float: "a number",
        bool: "a boolean",
        dict: "an object",
        list: "an array",
        str: "text",
    }
    for kind, label in names.items():
        if type(value) is kind:
            return label
    return f"a {type(value).__name__}"


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
