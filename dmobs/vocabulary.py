"""The words both wings use, each defined once: who acts, how names look, what a
trace id is, which keys are secret, which CSV cells a spreadsheet would run,
how long a username may be.

The write side (``dmobs.audit`` validates entries, ``dmobs.models`` constrains
the table, ``dmobs.observability.metrics`` bounds its labels) and the read side
(``auditui`` parses filters, renders diffs, writes exports) import these
names from here and define none of their own. Nothing in this module imports
from the project: it is the bottom floor (see the import contracts in
pyproject.toml).

The secret rule
---------------

Which keys' values in before/after states are masked. Every place that shows
or exports a state calls this module and nothing else: the diff of the screens
(``auditui.diff``), the CSV export (both the generic one and PostgreSQL's,
whose quick text check may only skip texts this rule would leave alone), the
NDJSON export and the Django admin.

The rule works on the decoded key (a ``str`` from the parsed JSON, never the
JSON text with its escapes):

1. Fold it to a skeleton: compatibility-decompose (NFKD: the long s ``ſ`` is
   ``s``, fullwidth and mathematical letters are ASCII, ``ö`` is ``o`` plus a
   mark), case-fold, map letters that look like Latin ones (Cyrillic ``а``,
   Greek ``ο``, small capitals, ...) to them, and drop everything that is not
   an ASCII letter or digit (marks, punctuation, spaces, control and invisible
   characters, other letters): ``pass\\nword``, ``pаssword``, ``API-Key`` and
   ``x_api_key`` become ``password``, ``password``, ``apikey``, ``xapikey``.
2. The key is secret when the skeleton contains one of ``SECRET_KEY_PARTS``.
3. One exception: a number under a key whose skeleton ends in ``tokens``
   (``inputTokens``, ``output_tokens``) is a count of AI tokens and is shown,
   unless the rest of the key is secret too (``secretTokens``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

# --- actors ---------------------------------------------------------------------
# Who performed an action (audit_logs.actorType; a CHECK constraint holds it).
ACTOR_TYPES = ("human", "agent", "system")

# --- names ----------------------------------------------------------------------
# An action or resource type as audit_log() accepts it: lowercase, starting with
# a letter; dots and hyphens allowed for namespaced names ("billing.plan-changed").
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
NAME_MAX_LENGTH = 64
NAME_RULE = "lowercase letters, digits, '_', '.' and '-', starting with a letter"


# --- trace ids ------------------------------------------------------------------
# W3C trace context: 32 lowercase hex digits, all zero meaning "no trace".
TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}\Z")  # \Z: "$" would accept a trailing newline
ZERO_TRACE_ID = "0" * 32


def is_valid_trace_id(value: object) -> bool:
    return isinstance(value, str) and bool(TRACE_ID_RE.match(value)) and value != ZERO_TRACE_ID


# --- CSV ------------------------------------------------------------------------
# First characters that make a spreadsheet read a cell as a formula (OWASP's
# "CSV Injection" list); an export prefixes such a cell with a quote.
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# --- usernames ------------------------------------------------------------------
# Django's username field holds at most 150 characters: no account has a longer
# name, so a longer sign-in guess can be cut to this without losing anything.
MAX_USERNAME = 150

# --- secrets (the rule described in the module docstring) ---------------------------

MASK = "••••••"

SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "privatekey",
    "credential",
    "accesskey",
    "signingkey",
    "sessionkey",
    "cookie",
)
TOKEN_COUNT_SUFFIX = "tokens"

# Letters of other scripts that look like a Latin letter (after case folding),
# from Unicode's confusables for a-z (UTS #39), the ones a person would read as
# that letter. NFKD already folds compatibility forms (fullwidth, mathematical,
# circled, superscript letters, the long s, ligatures).
_LOOKALIKES = {
    "a": "аɑαᴀ",
    "b": "вьʙβƀ",
    "c": "сϲϹᴄⅽ",
    "d": "ԁᴅđ",
    "e": "еєεᴇ",
    "g": "ɡɢԍց",
    "h": "һнʜħհ",
    "i": "іıɩɪι",
    "j": "јȷϳᴊ",
    "k": "кκᴋ",
    "l": "ӏʟłⅼ",
    "m": "мᴍ",
    "n": "пηɴո",
    "o": "оοᴏøօ",
    "p": "рρᴘ",
    "q": "ԛ",
    "r": "гʀ",
    "s": "ѕꜱ",
    "t": "тτᴛŧ",
    "u": "υᴜս",
    "v": "νᴠ",
    "w": "ԝωᴡ",
    "x": "хχ",
    "y": "уүγʏ",
    "z": "ᴢƶ",
}
_FOLD = {ord(ch): latin for latin, chars in _LOOKALIKES.items() for ch in chars}


@functools.lru_cache(maxsize=8192)  # keys repeat across entries; exports ask per key
def key_skeleton(key: str) -> str:
    """The key as the rule compares it: folded to ``[a-z0-9]`` (see the module doc)."""
    # Look-alikes are folded before the decomposition too: some decompose to a
    # letter that no longer looks like what was seen (lunate ϲ -> final sigma ς).
    text = unicodedata.normalize("NFKD", key.translate(_FOLD))
    text = unicodedata.normalize("NFKD", text.casefold())
    # Everything else goes: marks, punctuation, controls, invisible characters and
    # letters of other scripts with no Latin look-alike (masking more, never less).
    return "".join(ch for ch in text.translate(_FOLD) if ch.isascii() and ch.isalnum()).lower()


@functools.lru_cache(maxsize=8192)
def is_secret_key(key: object) -> bool:
    skeleton = key_skeleton(str(key))
    return any(part in skeleton for part in SECRET_KEY_PARTS)


@functools.lru_cache(maxsize=8192)
def counts_tokens(key: object) -> bool:
    """``inputTokens``, ``output_tokens``, ``maxTokens``: a key that names a number
    of tokens. Only "tokens" may make it look secret: ``secretTokens`` is not excused."""
    skeleton = key_skeleton(str(key))
    return skeleton.endswith(TOKEN_COUNT_SUFFIX) and not any(
        part in skeleton[: -len(TOKEN_COUNT_SUFFIX)] for part in SECRET_KEY_PARTS
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_masked(key: object, *values: Any) -> bool:
    """Whether the values under ``key`` are hidden: a secret-looking key, unless it
    counts tokens and every value given is a number (a count, not a credential)."""
    if not is_secret_key(key):
        return False
    return not (counts_tokens(key) and all(_is_number(v) for v in values))


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON value with the values of secret keys replaced by ``MASK``.

    The function every export and the admin call; the diff applies ``is_masked``
    per key as it walks both states.
    """
    if isinstance(value, dict):
        return {k: MASK if is_masked(k, v) else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value
