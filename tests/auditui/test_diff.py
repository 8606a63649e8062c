"""Golden cases for the before/after diff."""

from __future__ import annotations

import pytest

from auditui.diff import (
    ADDED,
    CHANGED,
    MASK,
    REMOVED,
    UNCHANGED,
    Change,
    diff_states,
    diff_view,
    is_secret_key,
    mask_secrets,
)


def test_nested_objects():
    before = {"status": "draft", "owner": {"name": "Ann", "team": {"id": 1}}, "gone": True}
    after = {"status": "live", "owner": {"name": "Ann", "team": {"id": 2}}, "new": None}
    assert diff_states(before, after) == [
        Change("status", CHANGED, '"draft"', '"live"'),
        Change("owner.name", UNCHANGED, '"Ann"', '"Ann"'),
        Change("owner.team.id", CHANGED, "1", "2"),
        Change("gone", REMOVED, "true", None),
        Change("new", ADDED, None, "null"),
    ]


def test_lists_index_by_index():
    before = {"tags": ["a", "b"], "steps": [{"n": 1}, {"n": 2}]}
    after = {"tags": ["a", "c", "d"], "steps": [{"n": 1}]}
    assert diff_states(before, after) == [
        Change("tags[0]", UNCHANGED, '"a"', '"a"'),
        Change("tags[1]", CHANGED, '"b"', '"c"'),
        Change("tags[2]", ADDED, None, '"d"'),
        Change("steps[0].n", UNCHANGED, "1", "1"),
        Change("steps[1].n", REMOVED, "2", None),
    ]


def test_type_changes_are_one_change_at_that_path():
    before = {"limit": {"max": 5}, "count": 1, "flag": 1, "ratio": 1}
    after = {"limit": "unlimited", "count": "1", "flag": True, "ratio": 1.0}
    assert diff_states(before, after) == [
        Change("limit", CHANGED, '{"max": 5}', '"unlimited"'),
        Change("count", CHANGED, "1", '"1"'),
        Change("flag", CHANGED, "1", "true"),
        Change("ratio", CHANGED, "1", "1.0"),
    ]


def test_missing_before_or_after():
    state = {"name": "Q3 plan", "budget": {"eur": 100}}
    assert diff_states(None, state) == [
        Change("name", ADDED, None, '"Q3 plan"'),
        Change("budget.eur", ADDED, None, "100"),
    ]
    assert diff_states(state, None) == [
        Change("name", REMOVED, '"Q3 plan"', None),
        Change("budget.eur", REMOVED, "100", None),
    ]
    assert diff_states(None, None) == []
    assert diff_states(None, "on") == [Change("(value)", ADDED, None, '"on"')]
    assert diff_states({}, {}) == [Change("(value)", UNCHANGED, "{}", "{}")]


def test_secret_looking_keys_are_masked():
    before = {
        "password": "hunter2",
        "config": {"apiKey": "k1", "Authorization": "Bearer x", "mode": "a"},
        "oauth": {"refresh_token": "r1"},
        "private_key": {"pem": "-----BEGIN"},
        "client-secret": "s",
    }
    after = {
        "password": "hunter3",
        "config": {"apiKey": "k1", "Authorization": "Bearer y", "mode": "b"},
        "oauth": {},
        "private_key": {"pem": "-----BEGIN 2"},
        "client-secret": "s",
        "db_credentials": ["u", "p"],
    }
    changes = diff_states(before, after)
    assert changes == [
        Change("password", CHANGED, MASK, MASK, masked=True),
        Change("config.apiKey", UNCHANGED, MASK, MASK, masked=True),
        Change("config.Authorization", CHANGED, MASK, MASK, masked=True),
        Change("config.mode", CHANGED, '"a"', '"b"'),
        Change("oauth.refresh_token", REMOVED, MASK, None, masked=True),
        Change("private_key", CHANGED, MASK, MASK, masked=True),
        Change("client-secret", UNCHANGED, MASK, MASK, masked=True),
        Change("db_credentials", ADDED, None, MASK, masked=True),
    ]
    text = repr(changes)
    for secret in ("hunter", "k1", "Bearer", "r1", "BEGIN"):
        assert secret not in text


@pytest.mark.parametrize(
    "key,secret",
    [
        ("password", True),
        ("PASSWORD_HASH", True),
        ("api_key", True),
        ("x-api-key", True),
        ("apikey", True),
        ("accessToken", True),
        ("authorization", True),
        ("private_key", True),
        ("aws_secret_access_key", True),
        ("credentials", True),
        ("name", False),
        ("status", False),
        ("keyword", False),
    ],
)
def test_is_secret_key(key, secret):
    assert is_secret_key(key) is secret


def test_mask_secrets_for_export():
    value = {"a": 1, "token": "t", "nested": [{"password": "p", "ok": 2}]}
    assert mask_secrets(value) == {"a": 1, "token": MASK, "nested": [{"password": MASK, "ok": 2}]}


def test_view_puts_unchanged_apart():
    view = diff_view({"a": 1, "b": 2}, {"a": 1, "b": 3})
    assert [c.path for c in view.changes] == ["b"]
    assert [c.path for c in view.unchanged] == ["a"]
    assert diff_view(None, None).empty


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        # What AI agents report as usage: counts, shown.
        ({"usage": {"inputTokens": 20164, "output_tokens": 3676, "maxTokens": 1.5}}, True),
        # A token-count name holding anything but a number is still hidden.
        ({"inputTokens": "sk-live-123"}, False),
        ({"refreshTokens": ["r1", "r2"]}, False),
        ({"maxTokens": True}, False),
        # Only "tokens" is excused, and only at the end of the key.
        ({"secretTokens": 3}, False),
        ({"token": 12345}, False),
        ({"tokenCount": 12}, False),
    ],
)
def test_token_counts_are_shown_credentials_are_not(state, shown):
    masked = mask_secrets(state)
    assert (masked == state) is shown
    changes = diff_states(None, state)
    assert all(c.masked is not shown for c in changes), changes


def test_a_count_that_becomes_text_is_masked_on_both_sides():
    (change,) = diff_states({"inputTokens": 10}, {"inputTokens": "sk-live-123"})
    assert change.masked and "sk-live" not in str(change.new) and change.old != "10"
