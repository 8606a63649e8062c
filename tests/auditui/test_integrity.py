"""The "Verify integrity" screens: Manage (everything) and the Dashboard (a
tenant admin's own tenant), on a sealed log that was then tampered with."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dmobs.models import AuditDigest, AuditLog
from tests.auditui.helpers import LIST_URLS
from tests.integrity_helpers import (
    digest_entry_ids,
    forged_entry,
    resign,
    seal,
    tamper_for,
    use_key,
)

pytestmark = pytest.mark.django_db

INTEGRITY = {app: f"{url}/integrity" for app, url in LIST_URLS.items()}
ID_RE = re.compile(r"\b[0-9a-f]{24}\b")


@pytest.fixture
def key(monkeypatch):
    return use_key(monkeypatch)


def page(response) -> str:
    return unescape(response.content.decode())


def tenant_of(entry_id: str) -> str | None:
    return AuditLog.objects.values_list("tenant_id", flat=True).get(pk=entry_id)


@pytest.fixture
def tampered(world, key):
    """Sealed, then: one acme entry changed, one globex entry deleted, one acme
    entry forged with an old timestamp, digest 4 removed, digest 3 re-signed."""
    seal()
    tamper = tamper_for()
    acme, globex = world.tenants["acme"].ref_id, world.tenants["globex"].ref_id
    changed = next(e for e in digest_entry_ids(1, acme))
    deleted = next(e for e in digest_entry_ids(2, globex))
    removed = digest_entry_ids(4)
    first = AuditDigest.objects.get(seq=1)
    forged = forged_entry(first.through - timedelta(seconds=1), acme)
    tamper.change_description(changed, "Nothing happened here")
    tamper.delete_entry(deleted)
    tamper.insert_entry(forged)
    tamper.delete_digest(4)
    resign(tamper, 3, Ed25519PrivateKey.generate())
    return {
        "changed": changed,
        "deleted": deleted,
        "forged": forged.pk,
        "removed": removed,
        "acme": acme,
        "globex": globex,
    }


def test_an_untouched_log_shows_verified_through(world, key, client):
    seal()
    client.force_login(world.users["root"])
    response = client.post(INTEGRITY["manage"])
    assert response.status_code == 200
    html = page(response)
    assert "Verified through" in html
    assert f"{len(world.entries)} entries in" in html
    assert "Integrity check failed" not in html


def test_manage_screen_names_every_change(world, tampered, client):
    client.force_login(world.users["root"])
    html = page(client.post(INTEGRITY["manage"]))
    assert "Integrity check failed" in html
    for kind, entry_id in (
        ("changed", tampered["changed"]),
        ("deleted", tampered["deleted"]),
        ("not_sealed", tampered["forged"]),
    ):
        section = re.search(rf'data-kind="{kind}">(.*?)</section>', html, re.S).group(1)
        assert entry_id in section, kind
    assert "Digest 4 has been removed" in html
    assert "Digest 3 is signed with key" in html and "re-signed" in html
    # A changed entry links to its detail page; a deleted one has none to link to.
    assert f'href="{LIST_URLS["manage"]}/{tampered["changed"]}/"' in html
    assert f'href="{LIST_URLS["manage"]}/{tampered["deleted"]}/"' not in html


def test_a_tenant_admin_verifies_their_tenant_and_sees_nothing_of_others(world, tampered, client):
    client.force_login(world.users["sarah"])  # admin of acme
    response = client.post(INTEGRITY["dashboard"])
    assert response.status_code == 200
    html = page(response)
    assert tampered["changed"] in html and tampered["forged"] in html
    assert tampered["deleted"] not in html  # a globex entry
    # Every entry id on the page is acme's (or the forged acme entry).
    shown = set(ID_RE.findall(html)) - {tampered["forged"]}
    assert shown, "the report names entries"
    assert {tenant_of(i) for i in shown if AuditLog.objects.filter(pk=i).exists()} == {
        tampered["acme"]
    }
    assert "Digest 4 has been removed" in html  # the chain is everyone's


def test_members_and_reviewers_cannot_verify(world, key, client, settings):
    settings.DMOBS_MEMBERS_SEE_OWN_ACTIONS = True
    seal()
    client.force_login(world.users["james"])  # member of acme
    assert client.post(INTEGRITY["dashboard"]).status_code == 403
    assert client.get(f"{INTEGRITY['dashboard']}/digests.ndjson").status_code == 403
    assert "Verify integrity" not in page(client.get(LIST_URLS["dashboard"]))
    client.force_login(world.users["rita"])  # reviewer
    assert client.get(INTEGRITY["portal"], follow=True).status_code == 404
    assert "Verify integrity" not in page(client.get(LIST_URLS["portal"]))
    client.force_login(world.users["sarah"])
    assert client.post(INTEGRITY["manage"]).status_code == 403


def test_list_screens_link_to_the_integrity_screen(world, key, client):
    client.force_login(world.users["root"])
    assert f'href="{INTEGRITY["manage"]}"' in page(client.get(LIST_URLS["manage"]))
    client.force_login(world.users["sarah"])
    assert f'href="{INTEGRITY["dashboard"]}"' in page(client.get(LIST_URLS["dashboard"]))


def test_bad_dates_get_a_400_with_a_message(world, key, client):
    client.force_login(world.users["root"])
    response = client.post(INTEGRITY["manage"], {"from": "yesterday"})
    assert response.status_code == 400
    assert "must be dates like" in page(response)
    response = client.post(INTEGRITY["manage"], {"from": "2026-02-02", "to": "2026-01-01"})
    assert response.status_code == 400


def test_tenant_proofs_hold_no_other_tenant(world, key, client):
    seal()
    acme = world.tenants["acme"].ref_id
    sealed_acme = set(AuditLog.objects.filter(tenant_id=acme).values_list("pk", flat=True))
    client.force_login(world.users["sarah"])
    response = client.get(f"{INTEGRITY['dashboard']}/digests.ndjson")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    others = set(AuditLog.objects.exclude(tenant_id=acme).values_list("pk", flat=True))
    docs = [json.loads(line) for line in body.splitlines()]
    assert docs and all(d["format"] == "dmobs-tenant-proof/1" for d in docs)
    assert not any(i in body for i in others)
    listed = {line.split(" ")[0] for d in docs for line in d["lines"].splitlines()}
    assert listed == sealed_acme
    # The entries export of the Dashboard is acme's only, too.
    response = client.get(f"{INTEGRITY['dashboard']}/entries.ndjson")
    records = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    exported = {r["id"] for r in records}
    assert sealed_acme <= exported
    assert not exported & others
    assert {r["tenantId"] for r in records} == {acme}


def test_public_key_is_published(world, key, client):
    from dmobs.integrity.keys import key_id, public_b64

    response = client.get("/integrity/keys.json")
    assert response.status_code == 200
    published = response.json()["keys"]
    assert published[0]["keyId"] == key_id(key.public_key())
    assert published[0]["publicKey"] == public_b64(key.public_key())
    pem = client.get("/integrity/public-key.pem")
    assert pem.status_code == 200 and b"BEGIN PUBLIC KEY" in pem.content
