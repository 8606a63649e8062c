"""Tamper evidence on MongoDB: entries written through the ORM and by the Node
services (pymongo, fields left out), sealed, then changed with pymongo as a DBA
would. audit_verify and the Manage screen name each change; an untouched log,
the offline verifier and late spool arrivals behave as on SQL."""

from __future__ import annotations

import json
from datetime import timedelta
from html import unescape
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from dmobs.integrity.digest import KIND_LATE
from dmobs.integrity.service import verify_store
from dmobs.integrity.verify import (
    CHANGED,
    DELETED,
    DIGEST_REMOVED,
    DIGEST_RESIGNED,
    NOT_SEALED,
    SEALED_LATE,
)
from dmobs.models import AuditDigest, AuditLog
from tests.auditui.conftest import build_world
from tests.auditui.helpers import LIST_URLS
from tests.integrity_helpers import (
    digest_entry_ids,
    forged_entry,
    resign,
    seal,
    tamper_for,
    use_key,
)
from tests.mongo.conftest import ms, node_document, writer_entry

pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


@pytest.fixture
def key(monkeypatch):
    return use_key(monkeypatch)


@pytest.fixture
def world(audit_collection):
    world = build_world()
    newest = max(e.created_at for e in world.entries)
    docs = [
        node_document(created_at=newest - timedelta(hours=i), description=f"Node {i}")
        for i in range(1, 6)
    ]
    docs.append(
        node_document(
            created_at=newest - timedelta(days=2),
            tenant_id=None,
            omit=("resourceName", "before", "after", "traceId"),
        )
    )
    # A state with a float that is whole, as a JavaScript writer stores it.
    docs.append(
        node_document(created_at=newest - timedelta(days=3), after={"ratio": 1.0, "n": 2.5})
    )
    audit_collection.insert_many(docs)
    world.node_docs = docs
    return world


def verify_cli(*args) -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


def test_an_untouched_log_verifies(world, key):
    result = seal()
    total = AuditLog.objects.count()
    assert result.entries == total == len(world.entries) + len(world.node_docs)
    ok, out = verify_cli()
    assert ok, out
    assert f"{total} entries" in out


def test_each_change_is_named_by_audit_verify_and_the_screen(world, key, client):
    seal()
    tamper = tamper_for()
    changed = digest_entry_ids(1)[2]
    node_id = str(world.node_docs[0]["_id"])
    deleted = digest_entry_ids(2)[4]
    removed = digest_entry_ids(4)
    first = AuditDigest.objects.get(seq=1)
    forged = forged_entry(ms(first.through - timedelta(seconds=3)), world.tenants["acme"].ref_id)
    tamper.change_description(changed, "Nothing happened here")
    tamper.change_after(node_id, {"status": "draft"})
    tamper.delete_entry(deleted)
    tamper.insert_entry(forged)
    tamper.delete_digest(4)
    attacker_id = resign(tamper, 3, Ed25519PrivateKey.generate())

    report = verify_store()
    found = {(f.kind, f.entry_id or f.seq) for f in report.problems()}
    expected = {
        (CHANGED, changed),
        (CHANGED, node_id),
        (DELETED, deleted),
        (NOT_SEALED, forged.pk),
        (DIGEST_REMOVED, 4),
        (DIGEST_RESIGNED, 3),
    } | {(NOT_SEALED, eid) for eid in removed if eid not in (changed, node_id, deleted)}
    assert found == expected

    ok, out = verify_cli()
    assert not ok
    for entry_id in (changed, node_id, deleted, forged.pk):
        assert f"Entry {entry_id}" in out
    assert "Digest 4 has been removed" in out
    assert f"Digest 3 is signed with key {attacker_id}" in out

    client.force_login(world.users["root"])
    html = unescape(client.post(f"{LIST_URLS['manage']}/integrity").content.decode())
    assert "Integrity check failed" in html
    for entry_id in (changed, node_id, deleted, forged.pk):
        assert entry_id in html
    assert "Digest 4 has been removed" in html and "re-signed" in html


def test_offline_verifier_on_a_mongodb_export(world, key, client, tmp_path):
    from dmobs.integrity import offline

    seal()
    client.force_login(world.users["root"])
    base = f"{LIST_URLS['manage']}/integrity"
    paths = {}
    for name, url in (
        ("entries", f"{base}/entries.ndjson"),
        ("digests", f"{base}/digests.ndjson"),
        ("keys", "/integrity/keys.json"),
    ):
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        paths[name] = tmp_path / name
        paths[name].write_bytes(body)
    sealed = {
        line.split(" ")[0]
        for d in map(json.loads, paths["digests"].read_text().splitlines())
        for lines in d["groups"].values()
        for line in lines.splitlines()
    }
    records = [json.loads(line) for line in paths["entries"].read_text().splitlines()]
    paths["entries"].write_text("".join(json.dumps(r) + "\n" for r in records if r["id"] in sealed))
    args = ["--entries", str(paths["entries"]), "--digests", str(paths["digests"])]
    assert offline.main([*args, "--public-key", str(paths["keys"])]) == 0
    changed = sorted(sealed)[0]
    paths["entries"].write_text(
        "".join(
            json.dumps(dict(r, description="x") if r["id"] == changed else r) + "\n"
            for r in records
            if r["id"] in sealed
        )
    )
    assert offline.main([*args, "--public-key", str(paths["keys"])]) == 1


def test_late_spool_arrivals_do_not_break_verification(world, key, tmp_path):
    from dmobs.audit.spool import Spool

    seal()
    first = AuditDigest.objects.get(seq=1)
    late = [writer_entry(i, created_at=first.through - timedelta(minutes=i + 1)) for i in range(3)]
    for entry in late:
        entry["before"] = json.dumps(entry["before"])
        entry["after"] = json.dumps(entry["after"])
    spool = Spool(tmp_path / "spool")
    spool.append(late)
    spool.close()
    call_command("audit_replay", spool_dir=str(tmp_path / "spool"), stdout=StringIO())
    ids = {e["id"] for e in late}
    assert {f.entry_id for f in verify_store().problems()} == ids
    result = seal()
    assert result.late == 3
    assert AuditDigest.objects.get(seq=result.digests[0].seq).kind == KIND_LATE
    report = verify_store()
    assert report.ok, report.to_dict()
    assert {f.entry_id for f in report.notices() if f.kind == SEALED_LATE} == ids


def test_digests_are_unique_by_seq_on_mongodb(world, key):
    """The collection's unique index on seq keeps two sealers from both writing
    digest n, as the unique constraint does on SQL."""
    from dmobs.integrity.seal import Sealer, SealError

    racing = Sealer(settle=0, block_size=50)
    seal()
    racing._last = lambda: None
    with pytest.raises(SealError, match="another sealer"):
        racing.seal()
