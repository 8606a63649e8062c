"""Tamper evidence on SQLite and PostgreSQL (DATABASE_URL picks): seal, tamper
with the database's own tools, and audit_verify names each change."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

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
    # The result does not hold the entries' lines (a first seal of millions would);
    # each digest reads its own back from the store when asked.
    assert all(d.lazy for d in result.digests)
    stored = {row.seq: row.to_digest() for row in AuditDigest.objects.all()}
    assert all(d.loaded().groups == stored[d.seq].groups for d in result.digests)
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
    sealed = list(AuditDigest.objects.order_by("seq"))
    assert len(sealed) >= 7
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
    # On PostgreSQL only the blocks nothing touched were checked by their store
    # hash: 1 (changed, forged), 2 (deleted), 3 (re-signed) and 5 (its range
    # starts where removed 4's did) went entry by entry, and named each change.
    untouched = sum(d.count for d in sealed if d.kind == "entries" and d.seq > 5)
    assert untouched
    assert report.store_hashed == (untouched if connection.vendor == "postgresql" else 0)
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


def test_late_spool_arrivals_are_sealed_later_without_breaking_earlier_blocks(world, key, tmp_path):
    """Entries written an hour ago reach the store only now (a spool replayed
    after an outage): the sealed blocks stay valid, the entries go into a late
    block, and verification passes, listing them as sealed late."""
    from dmobs.audit.api import build_entry
    from dmobs.audit.spool import Spool
    from dmobs.ids import new_object_id
    from dmobs.integrity.digest import KIND_LATE
    from dmobs.integrity.verify import SEALED_LATE

    seal()
    before = {d.seq: (d.header, d.signature) for d in AuditDigest.objects.all()}
    first = AuditDigest.objects.get(seq=1)
    late = []
    for i in range(3):
        entry = build_entry(
            tenant_id=world.tenants["globex"].ref_id,
            actor_type="agent",
            actor_id="agent-globex",
            actor_name="Globex Planner Agent",
            action="completed",
            resource_type="activity",
            resource_id=f"act-late-{i}",
            description=f"Globex Planner Agent completed activity {i} during the outage",
            after={"n": i, "ratio": 1.0},
        )
        created = first.through - timedelta(minutes=5 + i)
        entry.update(created_at=created, id=new_object_id(created.timestamp()))
        late.append(entry)
    spool = Spool(tmp_path / "spool")
    spool.append(late)
    spool.close()
    call_command("audit_replay", spool_dir=str(tmp_path / "spool"), stdout=StringIO())
    late_ids = {e["id"] for e in late}
    assert AuditLog.objects.filter(pk__in=late_ids).count() == 3

    # Before the next seal they are reported, not hidden...
    report = verify_store()
    assert {f.entry_id for f in report.problems()} == late_ids
    assert {f.kind for f in report.problems()} == {NOT_SEALED}
    # ...and once sealed they verify, in a late block after the others.
    result = seal()
    assert result.late == 3
    late_digest = AuditDigest.objects.get(seq=result.digests[0].seq)
    assert late_digest.kind == KIND_LATE and late_digest.seq == max(before) + 1
    assert {
        d.seq: (d.header, d.signature) for d in AuditDigest.objects.filter(seq__in=before)
    } == before
    report = verify_store()
    assert report.ok, report.to_dict()
    assert {f.entry_id for f in report.notices() if f.kind == SEALED_LATE} == late_ids
    # A third run finds nothing more to seal.
    assert seal().late == 0


def test_key_rotation_is_a_digest_countersigned_by_the_old_key(world, key, monkeypatch):
    from dmobs.integrity import keys as keymod
    from dmobs.integrity.digest import KIND_ROTATION
    from dmobs.integrity.verify import ROTATION_INVALID
    from tests.integrity_helpers import raw_b64

    seal()
    new_key = Ed25519PrivateKey.generate()
    use_key(monkeypatch, new_key)
    # Without the old key the sealer refuses, naming both keys.
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("audit_seal", "--settle=0", stdout=out)
    assert keymod.key_id(key.public_key()) in str(refused.value)
    assert keymod.key_id(new_key.public_key()) in str(refused.value)

    monkeypatch.setenv("DMOBS_AUDIT_PREVIOUS_SIGNING_KEY", raw_b64(key))
    result = seal()
    assert result.rotated
    rotation = AuditDigest.objects.get(kind=KIND_ROTATION)
    header = json.loads(rotation.header)
    assert header["previousKeyId"] == keymod.key_id(key.public_key())
    assert header["keyId"] == keymod.key_id(new_key.public_key())
    monkeypatch.delenv("DMOBS_AUDIT_PREVIOUS_SIGNING_KEY")

    AuditLog.objects.create(**_entry_fields(world))
    seal()
    # Only the new key is trusted now: the old one is trusted through the rotation.
    report = verify_store()
    assert report.ok, report.to_dict()
    assert {d.key_id for d in AuditDigest.objects.all()} == {
        keymod.key_id(key.public_key()),
        keymod.key_id(new_key.public_key()),
    }

    # The published keys name the old key, through the rotation digest.
    from dmobs.integrity.service import published_keys

    listed = {k["keyId"]: k for k in published_keys()["keys"]}
    assert listed[keymod.key_id(new_key.public_key())]["trusted"] is True
    old_entry = listed[keymod.key_id(key.public_key())]
    assert old_entry["namedBy"] == f"rotation digest {rotation.seq}"
    assert old_entry["publicKey"] == keymod.public_b64(key.public_key())

    # A "rotation" to an attacker's key that the old key did not countersign.
    attacker = Ed25519PrivateKey.generate()
    tamper = tamper_for()
    from dmobs.integrity.digest import header_text

    header["keyId"] = keymod.key_id(attacker.public_key())
    header["publicKey"] = keymod.public_b64(attacker.public_key())
    text = header_text(header)
    tamper.replace_digest(rotation.seq, text, keymod.sign(attacker, text.encode()), header["keyId"])
    report = verify_store()
    kinds = {f.kind for f in report.problems()}
    assert ROTATION_INVALID in kinds and not report.ok


def _entry_fields(world) -> dict:
    from django.utils import timezone

    return dict(
        tenant_id=world.tenants["acme"].ref_id,
        actor_type="human",
        actor_id="u-x",
        actor_name="X",
        action="created",
        resource_type="plan",
        resource_id="p-9",
        description="X created the plan",
        after={"a": 1},
        created_at=timezone.now(),
    )


def test_audit_seal_command_and_loop_mode(world, key, tmp_path):
    out = StringIO()
    call_command("audit_seal", "--settle=0", "--block-size=100", stdout=out)
    assert f"Sealed {len(world.entries)} new and 0 late entries in 4 digest(s)" in out.getvalue()
    AuditLog.objects.create(**_entry_fields(world))
    out = StringIO()
    call_command("audit_seal", "--loop", "--interval=0.01", "--runs=2", "--settle=0", stdout=out)
    assert "Sealed 1 new and 0 late entries" in out.getvalue()
    assert verify_store().ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--block-size=0"], "--block-size must be between 1 and 50000"),
        (["--settle=-1"], "--settle must be 0 or more"),
        (["--loop", "--interval=0"], "--interval must be more than 0"),
    ],
)
def test_audit_seal_rejects_bad_options(args, message, key):
    with pytest.raises(CommandError, match=message):
        call_command("audit_seal", *args)


def test_audit_seal_without_a_key_says_how_to_make_one(monkeypatch, db):
    monkeypatch.delenv("DMOBS_AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("DMOBS_AUDIT_SIGNING_KEY_FILE", raising=False)
    with pytest.raises(CommandError, match="audit_keygen"):
        call_command("audit_seal")


def test_audit_verify_rejects_bad_options(world, key):
    with pytest.raises(CommandError, match="--from: 'soon' is not an ISO date"):
        call_command("audit_verify", "--from=soon")
    with pytest.raises(CommandError, match="no tenant with slug or ref id 'nope'"):
        call_command("audit_verify", "--tenant=nope")


def test_audit_verify_by_tenant_and_period(world, key):
    seal()
    acme = world.tenants["acme"].ref_id
    tamper = tamper_for()
    globex_entry = digest_entry_ids(1, world.tenants["globex"].ref_id)[0]
    tamper.change_description(globex_entry, "changed")
    ok, out = verify_cli("--tenant=acme")
    assert ok, out
    count = AuditLog.objects.filter(tenant_id=acme).count()
    assert f"{count} entries" in out
    ok, out = verify_cli("--tenant=globex")
    assert not ok and globex_entry in out
    # A period after the changed entry's block verifies; one including it does not.
    last = AuditDigest.objects.order_by("-seq").first()
    ok, out = verify_cli(f"--from={last.through:%Y-%m-%d}")
    first = AuditDigest.objects.get(seq=1)
    if first.through.date() < last.through.date():
        assert ok, out
    ok, out = verify_cli("--json")
    report = json.loads(out[: out.rindex("}") + 1])
    assert report["ok"] is False and report["counts"] == {"changed": 1}


def test_audit_keygen_writes_a_private_file(tmp_path):
    import os
    import stat

    path = tmp_path / "keys" / "signing.pem"
    out = StringIO()
    call_command("audit_keygen", f"--out={path}", stdout=out)
    assert "BEGIN PRIVATE KEY" in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    public = (tmp_path / "keys" / "signing.pub.pem").read_text()
    assert "BEGIN PUBLIC KEY" in public and "PRIVATE" not in public
    assert "key " in out.getvalue()
    with pytest.raises(CommandError, match="exists"):
        call_command("audit_keygen", f"--out={path}")
    text = path.read_text()
    call_command("audit_keygen", f"--out={path}", "--if-missing", stdout=StringIO())
    assert path.read_text() == text


# --- permanence of the digests --------------------------------------------------


@pytest.fixture
def root_client(client, world):
    client.force_login(world.users["root"])
    return client


def test_admin_shows_digests_read_only(root_client, world, key):
    seal()
    digest = AuditDigest.objects.get(seq=1)
    url = f"/admin/dmobs/auditdigest/{digest.pk}/change/"
    page = root_client.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert root_client.post(url, {"signature": "x"}).status_code == 403
    assert root_client.post(f"/admin/dmobs/auditdigest/{digest.pk}/delete/").status_code == 403
    assert root_client.post("/admin/dmobs/auditdigest/add/", {}).status_code == 403
    assert AuditDigest.objects.get(seq=1).signature == digest.signature


DIGEST_SQL = {
    "update": "UPDATE audit_digests SET signature = 'x' WHERE seq = 1",
    "delete": "DELETE FROM audit_digests WHERE seq = 1",
    "truncate": "TRUNCATE audit_digests",
}


@pytest.mark.parametrize("sql", DIGEST_SQL.values(), ids=DIGEST_SQL.keys())
def test_postgresql_triggers_refuse_changing_digests(sql, world, key):
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the SQL triggers exist on PostgreSQL only")
    seal()
    signature = AuditDigest.objects.get(seq=1).signature
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_digests ENABLE TRIGGER audit_digests_no_truncate")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(sql)
    assert AuditDigest.objects.get(seq=1).signature == signature


def test_the_sealer_warns_when_sealed_entries_are_gone(world, key):
    seal()
    tamper_for().delete_entry(digest_entry_ids(1)[0])
    err = StringIO()
    call_command("audit_seal", "--settle=0", stdout=StringIO(), stderr=err)
    assert "1 sealed entries are no longer in the store" in err.getvalue()
    assert "audit_verify" in err.getvalue()


def test_two_sealers_cannot_write_the_same_digest(world, key):
    from dmobs.integrity.seal import Sealer, SealError

    racing = Sealer(settle=0, block_size=50)
    seal()
    racing._last = lambda: None  # it has not seen the other's digests
    with pytest.raises(SealError, match="another sealer"):
        racing.seal()


# --- one canonical form, every way of computing it --------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    description=_text,
    name=st.none() | _text,
    before=st.none() | st.dictionaries(_text, _json, max_size=5),
    after=st.none() | st.dictionaries(_text, _json, max_size=5),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_every_source_hashes_an_entry_the_same_way(db, description, name, before, after, micros):
    """The ORM path (SQLite, MongoDB), PostgreSQL's SQL fast path and a record
    as the export carries it give one hash for the same stored entry."""
    from django.db import connection, transaction
    from django.utils import timezone

    from dmobs.integrity.canonical import record_hash
    from dmobs.integrity.service import entry_records
    from dmobs.integrity.sources import DjangoSource, PostgresSource

    created = timezone.now().replace(microsecond=micros) - timedelta(days=1)
    with transaction.atomic():
        entry = AuditLog.objects.create(
            tenant_id="t-canon",
            actor_type="human",
            actor_id="u-1",
            actor_name=name or "x",
            action="updated",
            resource_type="plan",
            resource_id='p "1" \\ \t',
            resource_name=name,
            description=description,
            before=before,
            after=after,
            trace_id=None,
            created_at=created,
        )
        orm = list(DjangoSource().hashed_by_ids([entry.pk]))
        record = next(r for r in entry_records(tenant="t-canon") if r["id"] == entry.pk)
        assert orm[0][3] == record_hash(json.loads(json.dumps(record)))
        if connection.vendor == "postgresql":
            sql = list(PostgresSource().hashed_by_ids([entry.pk]))
            assert sql[0][3] == orm[0][3]
            ranged = list(PostgresSource().hashed_between(created - timedelta(seconds=1), created))
            assert [h for h in ranged if h[0] == entry.pk][0][3] == orm[0][3]
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [1, 2])
def test_verification_outside_a_transaction_reads_ahead_and_in_worker_processes(workers, key):
    """Outside a transaction PostgreSQL's source reads the next block on a
    helper thread's connection, and ``workers`` checks blocks in threads with
    their own connections: the findings are the same as in the tests above."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("read-ahead and worker processes are PostgreSQL's fast path")
    world = build_world()
    seal()
    changed, deleted = digest_entry_ids(2)[1], digest_entry_ids(5)[2]
    tamper = tamper_for()
    tamper.change_description(changed, "Nothing happened here")
    tamper.delete_entry(deleted)
    report = verify_store(workers=workers)
    found = {(f.kind, f.entry_id) for f in report.problems()}
    assert found == {(CHANGED, changed), (DELETED, deleted)}
    assert report.entries == len(world.entries) - 1
    # The blocks left untouched verify by their store hashes, blocks 2 and 5
    # entry by entry.
    blocks = {d.seq: d.count for d in AuditDigest.objects.all() if d.kind == "entries"}
    assert report.store_hashed == len(world.entries) - blocks[2] - blocks[5]
    ok, out = verify_cli(f"--workers={workers}")
    assert not ok and changed in out and deleted in out


# --- PostgreSQL hashing in SQL: hostile values, races, the verifier's block text ----

HOSTILE = 'q"\\ \t\n\r\b\f\x01\x1f\x7f é 𝄞 \u2028 </ '
HOSTILE_STATES = [
    None,
    {"a": 1.0, "b": [1e2, 1.5, -0.0, 2**60, 0.1], "": None},
    {"z": HOSTILE, HOSTILE: {"y": [None, True, False]}, "A": "x", "é": 2},
    {"big": "x" * 300_000},
    {"a": 1},  # the same jsonb value as {"a": 1.0}
    [1, "2", {}],
    "a string state",
    7,
]
# Stored as this exact text: equal jsonb values (whole numbers from 2^53) whose
# canonical forms differ (an integer, a double), and ones that do not.
RAW_STATES = [
    ('{"n": 10000000000000000}', '{"n": 10000000000000000.0}'),
    ('{"n": 10000000000000000.0}', '{"n": 1e16}'),
    ('{"n": 12345678901234567890.5, "s": "1234567890123456"}', '{"n": 1.0}'),
    ('{"n": 1.0}', '{"n": 1}'),
]


def _hostile_rows(start) -> list[str]:
    """Every pair of hostile states, hostile text in every text column, three
    kinds of tenant; then RAW_STATES inserted as text, with hostile ids, tenants
    and traces. Their ids."""

    ids = []
    tenants = [None, "", "t " + HOSTILE]
    for i, before in enumerate(HOSTILE_STATES):
        for j, after in enumerate(HOSTILE_STATES):
            entry = AuditLog.objects.create(
                tenant_id=tenants[(i + j) % 3],
                actor_type="human",
                actor_id="u" + HOSTILE,
                actor_name=HOSTILE,
                action="updated",
                resource_type="plan",
                resource_id=HOSTILE,
                resource_name=None if j % 2 else HOSTILE,
                description=HOSTILE * 3,
                before=before,
                after=after,
                trace_id=None if i % 2 else "ab" * 16,
                created_at=start + timedelta(microseconds=i * 10 + j),
            )
            ids.append(entry.pk)
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        for k, (before, after) in enumerate(RAW_STATES):
            # Ids, tenants and traces that need escaping, too (SQL allows them).
            eid = f'i"\\\t\n{k} é'
            cursor.execute(
                'INSERT INTO audit_logs (id, "tenantId", "actorType", "actorId", "actorName", '
                'action, "resourceType", "resourceId", "resourceName", description, before, '
                f'after, "traceId", "createdAt") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, '
                f"%s, %s{cast}, %s{cast}, %s, %s)",
                [
                    eid,
                    None if k % 2 else f't"\\\x01 é{k}',
                    "human",
                    "u",
                    "n",
                    "a",
                    "r",
                    "1",
                    "d",
                    before,
                    after,
                    f'tr"\\\x02é{k}' if k % 2 else None,
                    start + timedelta(microseconds=900 + k),
                ],
            )
            ids.append(eid)
    return ids


def test_hostile_rows_hash_alike_on_every_path(db):
    """Control characters, quotes, non-ASCII, a 300 kB state, equal jsonb
    values with different canonical forms: the Python path (SQLite, MongoDB,
    the ORM on PostgreSQL), the export's records and PostgreSQL's SQL (by ids,
    by range, a block's lines as a digest lists them) give the same hashes."""
    from django.utils import timezone

    from dmobs.integrity.canonical import record_hash
    from dmobs.integrity.service import entry_records
    from dmobs.integrity.sources import DjangoSource, PostgresSource, store_hash_of

    start = timezone.now().replace(microsecond=0) - timedelta(days=1)
    ids = _hostile_rows(start)
    python = {
        eid: (eid, tenant, created, h)
        for eid, tenant, created, h in DjangoSource().hashed_by_ids(ids)
    }
    assert set(python) == set(ids)
    records = {r["id"]: record_hash(json.loads(json.dumps(r))) for r in entry_records()}
    assert {eid: python[eid][3] for eid in ids} == {eid: records[eid] for eid in ids}
    # The two states stored as 10000000000000000 and 10000000000000000.0 differ.
    assert python[ids[-4]][3] != python[ids[-3]][3]
    if connection.vendor != "postgresql":
        return
    source = PostgresSource()
    assert {h[0]: h for h in source.hashed_by_ids(ids)} == python
    lo, hi = start - timedelta(seconds=1), start + timedelta(seconds=1)
    ranged = list(source.hashed_between(lo, hi))
    assert ranged == sorted(python.values(), key=lambda h: (h[2], h[0]))
    groups: dict[str, str] = {}
    for eid, tenant, _created, entry_hash in ranged:
        groups[tenant] = groups.get(tenant, "") + f"{eid} {entry_hash}\n"
    assert list(source.leaf_ranges([(lo, hi)])) == [
        ("".join(groups[t] for t in sorted(groups)), len(ids))
    ]
    platform = list(source.leaf_ranges([(lo, hi)], tenant=""))
    assert platform == [(groups[""], sum(1 for h in ranged if h[1] == ""))]
    # The sealer's store hash (from the lines it read) is PostgreSQL's (in SQL).
    sealed = list(source.sealed_between(lo, hi))
    assert [entry for entry, _line_hash in sealed] == ranged
    assert source.store_hash(lo, hi) == (store_hash_of(h for _e, h in sealed), len(ids))


def test_a_digest_whose_entry_lists_were_changed_is_altered(world, key):
    """The verifier reads each digest's lists when it checks that block (not
    the whole chain's at once) and still checks them against the signed root."""
    seal()
    tamper = tamper_for()
    row = AuditDigest.objects.get(seq=2)
    groups = json.loads(row.groups)
    tenant = sorted(groups)[0]
    dropped = groups[tenant].splitlines()[0].split(" ")[0]
    groups[tenant] = "".join(groups[tenant].splitlines(keepends=True)[1:])
    tamper.replace_groups(2, json.dumps(groups))
    tamper.replace_groups(3, "{not json")
    report = verify_store()
    found = {(f.kind, f.entry_id or f.seq) for f in report.problems()}
    assert ("digest_altered", 2) in found and ("digest_altered", 3) in found
    assert (NOT_SEALED, dropped) in found
    messages = {f.seq: f.message for f in report.problems() if f.kind == "digest_altered"}
    assert "does not match the signed root" in messages[2]
    assert "does not parse" in messages[3]


def test_each_block_s_lines_come_from_the_store_as_its_digest_lists_them(world, key):
    """What lets PostgreSQL's verifier check an unchanged block with one
    comparison: the store's entries of a block's range, hashed and grouped
    by tenant, are the digest's lines (on every store, and on PostgreSQL
    as one text from ``leaves_between``)."""

    from dmobs.integrity.seal import load_digests, parse_exact
    from dmobs.integrity.sources import PostgresSource, source_for

    seal()
    digests = [d for d in load_digests(lazy=True) if d.kind == "entries"]
    assert len(digests) >= 5 and all(d.groups is None for d in digests)
    lower = None
    for digest in digests:
        through = parse_exact(digest.header["through"])
        groups: dict[str, str] = {}
        for eid, tenant, _created, entry_hash in source_for().hashed_between(lower, through):
            groups[tenant] = groups.get(tenant, "") + f"{eid} {entry_hash}\n"
        lines = digest.lines_for(None)
        assert "".join(groups[t] for t in sorted(groups)) == lines
        if connection.vendor == "postgresql":
            leaves = list(PostgresSource().leaf_ranges([(lower, through)]))
            assert leaves == [(lines, lines.count("\n"))]
        lower = through


# --- PostgreSQL's store hash: an unchanged block checked in SQL alone ---------------


def test_an_untouched_log_verifies_by_store_hashes_on_postgresql(world, key):
    """On PostgreSQL each entries digest signs the store hash of its range
    (the sealer's equals what the verifier computes), and a whole-log check
    of an untouched log verifies every block by it: no entry is hashed in
    Python. A tenant's check, and other stores, hash entry by entry."""
    from dmobs.integrity.seal import load_digests, parse_exact
    from dmobs.integrity.sources import source_for

    seal()
    digests = [d for d in load_digests() if d.kind == "entries"]
    assert len(digests) >= 6
    source = source_for()
    if connection.vendor != "postgresql":
        assert not any("storeHash" in d.header for d in digests)
        assert not hasattr(source, "store_hash")
        assert verify_store().store_hashed == 0
        return
    for digest in digests:
        after, through = parse_exact(digest.header["after"]), parse_exact(digest.header["through"])
        stored = source.store_hash(after, through)
        assert digest.header["storeHash"] == {"kind": "postgresql-line-v1", "hash": stored.hash}
        assert stored.count == digest.header["count"]
    report = verify_store()
    assert report.ok, report.to_dict()
    assert report.entries == report.store_hashed == len(world.entries)
    assert report.to_dict()["storeHashed"] == len(world.entries)
    tenant = verify_store(tenant=world.tenants["acme"].ref_id)
    assert tenant.ok and tenant.entries and tenant.store_hashed == 0


def test_a_change_only_postgresql_s_text_sees_falls_back_and_verifies(db, key):
    """A jsonb number stored as 1.00 instead of 1.0 is the same canonical
    value (the entry is unchanged) but another row text: the block's store
    hash differs, the block is checked entry by entry and verifies."""
    from django.utils import timezone

    if connection.vendor != "postgresql":
        pytest.skip("the store hash exists on PostgreSQL only")
    start = timezone.now() - timedelta(hours=1)
    ids = [
        AuditLog.objects.create(
            actor_type="human",
            actor_id="u1",
            actor_name="Ann",
            action="updated",
            resource_type="plan",
            resource_id=str(i),
            description=f"ratio {i}",
            after={"ratio": 1.0, "n": i},
            created_at=start + timedelta(seconds=i),
        ).pk
        for i in range(120)
    ]
    seal()
    tamper_for()._run(
        "audit_logs",
        """UPDATE audit_logs SET after = '{"n": 7, "ratio": 1.00}'::jsonb WHERE id = %s""",
        [ids[7]],
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT after::text FROM audit_logs WHERE id = %s", [ids[7]])
        assert cursor.fetchone()[0] == '{"n": 7, "ratio": 1.00}'
    report = verify_store()
    assert report.ok, report.to_dict()
    assert report.entries == 120
    first_block = AuditDigest.objects.get(seq=1).count
    assert report.store_hashed == 120 - first_block
