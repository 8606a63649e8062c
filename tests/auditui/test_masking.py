"""One masking rule on decoded keys, everywhere (issue 12, findings 4 and 5, and
the confusable keys of finding 7).

``dmobs.vocabulary`` decides; the detail page, the expanded row of the list (the
detail fragment), the Django admin's change page, the CSV export (on
PostgreSQL the chunked one with its quick text check) and the NDJSON export
must all hide exactly the values it hides. Property-based: any key hypothesis
draws (control characters, invisible and confusable letters included), and keys
made from a secret word disguised the ways a key can be.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import UTC, datetime

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dmobs.ids import new_object_id
from dmobs.models import AuditLog, User
from dmobs.vocabulary import SECRET_KEY_PARTS, is_masked, key_skeleton, mask_secrets
from tests.auditui.helpers import LIST_URLS, ndjson_records, streamed

pytestmark = pytest.mark.django_db

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# A JSON key any store can hold: any Unicode scalar but NUL (audit_log() and
# PostgreSQL's jsonb refuse it) and lone surrogates.
key_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
any_key = st.text(key_chars, min_size=1, max_size=24)

# Ways a secret word is disguised in a key: each letter may become a look-alike
# of another script, a compatibility form or upper case, and anything that is
# not a letter may sit between letters.
LOOKALIKE = {
    "a": "аɑαᴀａ𝐚",
    "c": "сϲᴄ",
    "e": "еεᴇ",
    "i": "іıɩɪ",
    "k": "кκᴋ",
    "o": "оοᴏ",
    "p": "рρᴘ",
    "s": "ѕꜱſ",
    "t": "тτᴛ",
    "y": "уʏ",
    "w": "ԝᴡ",
}
FILLERS = ["", "", "", "_", "-", ".", " ", "\n", "\t", "\x01", "\x7f", "\u200b", "\u00ad", "\ufeff"]


@st.composite
def disguised_secret(draw) -> str:
    word = draw(st.sampled_from(SECRET_KEY_PARTS))
    out = [draw(st.sampled_from(["", "x_", "db", "my-", "Old"]))]
    for letter in word:
        choices = [letter, letter.upper(), *LOOKALIKE.get(letter, "")]
        out.append(draw(st.sampled_from(choices)))
        out.append(draw(st.sampled_from(FILLERS)))
    out.append(draw(st.sampled_from(["", "_hash", "s", "Value", "2"])))
    return "".join(out)


@pytest.mark.parametrize(
    "key",
    [
        "pass\nword",
        "paſsword",
        "pаssword",  # Cyrillic а
        "ΡΑSSWORD",  # Greek capitals
        "ｐａｓｓｗｏｒｄ",
        "𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝",
        "pass\u200bword",
        "api\x01_key",
        "Authorization",
        "x-api-key",
        "refresh_tokеn",  # Cyrillic е
        "passwörd",
        "secretTokens",
    ],
)
def test_disguised_secret_keys_are_masked(key):
    assert is_masked(key, "value")
    assert mask_secrets({key: "value"}) == {key: "••••••"}


@pytest.mark.parametrize("key", ["status", "Passport", "author", "inputTokens", "output_tokens"])
def test_plain_keys_and_token_counts_are_shown(key):
    assert not is_masked(key, 123)


@given(disguised_secret())
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_any_disguise_of_a_secret_word_is_masked(key):
    assert is_masked(key, "value"), (key, key_skeleton(key))


_serial = itertools.count()


def _surfaces(client, root_client, entry: AuditLog, marker: str) -> dict[str, bool]:
    """For each surface: does it show the value ``marker``?"""
    list_url = LIST_URLS["manage"]
    shown = {}
    detail = client.get(f"{list_url}/{entry.pk}/")
    fragment = client.get(f"{list_url}/{entry.pk}/", HTTP_HX_REQUEST="true")
    listing = client.get(f"{list_url}?trace={entry.trace_id}&range=all")
    admin = root_client.get(f"/admin/dmobs/auditlog/{entry.pk}/change/")
    for name, response in [("detail", detail), ("row", fragment), ("admin", admin)]:
        assert response.status_code == 200, name
        shown[name] = marker in response.content.decode()
    assert listing.status_code == 200
    assert marker not in listing.content.decode()  # the list shows no states at all
    export = f"{list_url}/export?trace={entry.trace_id}&range=all&format="
    rows = list(csv.DictReader(io.StringIO(streamed(client.get(export + "csv")))))
    assert [r["id"] for r in rows] == [entry.pk]
    shown["csv"] = marker in rows[0]["before"] or marker in rows[0]["after"]
    records = ndjson_records(client.get(export + "ndjson"))
    assert [r["id"] for r in records] == [entry.pk]
    shown["ndjson"] = marker in json.dumps(records[0], ensure_ascii=False)
    return shown


def _entry(key: str, marker: str) -> AuditLog:
    entry = AuditLog(
        id=new_object_id(),
        tenant_id=None,
        actor_type="system",
        actor_id="masking",
        actor_name="Masking test",
        action="updated",
        resource_type="skill",
        resource_id="sk-mask",
        description="masking property",
        before={"plain": "visible", key: marker, "nested": [{key: marker}]},
        after={key: marker + "-after"},
        trace_id=f"{next(_serial) + 1:032x}",
        created_at=datetime.now(UTC),
    )
    entry.save()
    return entry


@pytest.fixture
def viewers(client):
    root = User.objects.create_user(
        username="mask-root", password="x", is_superuser=True, is_staff=True
    )
    client.force_login(root)
    admin_client = Client()
    admin_client.force_login(root)
    return client, admin_client


@given(key=st.one_of(any_key, disguised_secret()))
@example(key="pass\nword")
@example(key="paſsword")
@example(key="pаssword")
@example(key="inputTokens")
@example(key="status")
@HYPOTHESIS
def test_every_surface_masks_the_same_keys(viewers, key):
    client, admin_client = viewers
    marker = f"v4lue{next(_serial)}x"
    entry = _entry(key, marker)
    shown = _surfaces(client, admin_client, entry, marker)
    expected_shown = not is_masked(key, marker)
    assert shown == dict.fromkeys(shown, expected_shown), (key, key_skeleton(key), shown)
