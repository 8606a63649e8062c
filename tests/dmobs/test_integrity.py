"""Tamper evidence on SQLite and PostgreSQL (DATABASE_URL picks): seal, tamper
with the database's own tools, and audit_verify names each change."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from dmobs.integrity import canonical
from dmobs.integrity.service import verify_store
from dmobs.integrity.verify import (
    CHANGED,
    DELETED,
    DIGEST_REMOVED,
    DIGEST_RESIGNED,
    NOT_SEALED,
)
from dmobs.models import AuditDigest, AuditLog, PermanentEntryError
from tests.auditui.conftest import build_world
from tests.integrity_helpers import (
    digest_entry_ids,
    forged_entry,
    resign,
    seal,
    tamper_for,
    use_key,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(monkeypatch):
    return use_key(monkeypatch)


@pytest.fixture
def world(db):
    return build_world()


def verify_cli(*args) -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


def test_an_untouched_log_verifies_through_the_last_seal(world, key):
    result = seal()
    assert result.entries == len(world.entries) == AuditLog.objects.count()
    assert len(result.digests) >= 6  # blocks of 50
    report = verify_store()
    assert report.ok, report.to_dict()
    assert report.entries == len(world.entries)
    assert report.verified_through == result.watermark
    ok, out = verify_cli()
    assert ok
    assert "OK: verified through" in out and f"{len(world.entries)} entries" in out


def test_audit_verify_names_every_change(world, key):
    seal()
    tamper = tamper_for()
    digests = list(AuditDigest.objects.order_by("seq").values_list("seq", flat=True))
    assert len(digests) >= 5
    changed = digest_entry_ids(1)[3]
    deleted = digest_entry_ids(2)[5]
    removed_ids = digest_entry_ids(4)
    first = AuditDigest.objects.get(seq=1)
    # Back-dated into the first block's range, after it was sealed.
    forged = forged_entry(first.through - timedelta(seconds=1), world.tenants["acme"].ref_id)

    tamper.change_description(changed, "Nothing happened here")
    tamper.delete_entry(deleted)
    tamper.insert_entry(forged)
    tamper.delete_digest(4)
    attacker = Ed25519PrivateKey.generate()
    attacker_id = resign(tamper, 3, attacker)

    report = verify_store()
    assert not report.ok
    found = {(f.kind, f.entry_id or f.seq) for f in report.problems()}
    assert (CHANGED, changed) in found
    assert (DELETED, deleted) in found
    assert (NOT_SEALED, forged.pk) in found
    assert (DIGEST_REMOVED, 4) in found
    assert (DIGEST_RESIGNED, 3) in found
    # The removed digest's entries are no longer covered by any digest.
    assert {(NOT_SEALED, eid) for eid in removed_ids} <= found
    # Nothing else is reported.
    expected = {
        (CHANGED, changed),
        (DELETED, deleted),
        (NOT_SEALED, forged.pk),
        (DIGEST_REMOVED, 4),
        (DIGEST_RESIGNED, 3),
    } | {(NOT_SEALED, eid) for eid in removed_ids}
    assert found == expected

    ok, out = verify_cli()
    assert not ok
    assert f"Entry {changed}" in out and "was changed after it was sealed" in out
    assert f"Entry {deleted}, sealed in digest 2" in out and "has been deleted" in out
    assert f"Entry {forged.pk}" in out and "inserted after sealing with an old timestamp" in out
    assert "Digest 4 has been removed" in out
    assert f"Digest 3 is signed with key {attacker_id}" in out and "re-signed" in out
    assert "verification failed" in out


def test_the_orm_refuses_to_change_or_delete_a_digest(world, key):
    seal()
    digest = AuditDigest.objects.get(seq=1)
    with pytest.raises(PermanentEntryError):
        digest.delete()
    with pytest.raises(PermanentEntryError):
        AuditDigest.objects.filter(seq=1).update(signature="x")
    with pytest.raises(PermanentEntryError):
        AuditDigest.objects.all().delete()
    digest.signature = "x"
    with pytest.raises(PermanentEntryError):
        digest.save()


def test_canonical_form_is_documented_and_stable():
    record = {
        "id": "65f0c0ffee0000000000abcd",
        "tenantId": None,
        "actorType": "human",
        "actorId": "u-1",
        "actorName": "Zoë",
        "action": "updated",
        "resourceType": "plan",
        "resourceId": "p-1",
        "resourceName": None,
        "description": "Zoë updated the plan",
        "before": {"b": 1.0, "a": [1e2, 0.5, "x/y"]},
        "after": None,
        "traceId": None,
        "createdAt": "2026-12-01T09:30:00.123456+00:00",
    }
    text = canonical.record_canonical(record)
    state = canonical.state_hash(canonical.canonical_state(record["before"]))
    assert state == canonical.hash_text('{"a":[100,0.5,"x/y"],"b":1}')
    assert text == (
        '["dmobs-audit/1","65f0c0ffee0000000000abcd",null,"human","u-1","Zoë","updated",'
        f'"plan","p-1",null,"Zoë updated the plan","{state}",null,null,"2026-12-01T09:30:00.123Z"]'
    )
