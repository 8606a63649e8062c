"""The offline verifier: an NDJSON export + digest files + the public key, no
database. The files come from the app (screens and audit_digests); the check
runs in a separate Python process without Django settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from dmobs.integrity import offline
from dmobs.models import AuditDigest, AuditLog
from tests.auditui.conftest import build_world
from tests.auditui.helpers import LIST_URLS
from tests.integrity_helpers import seal, use_key

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key(monkeypatch):
    return use_key(monkeypatch)


@pytest.fixture
def world(db):
    return build_world()


def download(client, url: str, path: Path) -> Path:
    response = client.get(url)
    assert response.status_code == 200, url
    body = b"".join(response.streaming_content) if response.streaming else response.content
    path.write_bytes(body)
    return path


@pytest.fixture
def files(world, key, client, tmp_path):
    """Sealed log; the Manage screen's integrity export, the digests and keys."""
    seal()
    client.force_login(world.users["root"])
    base = f"{LIST_URLS['manage']}/integrity"
    return {
        "entries": download(client, f"{base}/entries.ndjson", tmp_path / "entries.ndjson"),
        "digests": download(client, f"{base}/digests.ndjson", tmp_path / "digests.ndjson"),
        "keys": download(client, "/integrity/keys.json", tmp_path / "keys.json"),
    }


def run_offline(entries, digests, keys, *extra) -> tuple[int, str]:
    """The verifier as an auditor runs it: its own process, no Django settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    code = (
        "import sys; from dmobs.integrity import offline; rc = offline.main(sys.argv[1:]); "
        "assert 'django' not in sys.modules, 'the offline verifier imported Django'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--entries",
            str(entries),
            "--digests",
            str(digests),
            "--public-key",
            str(keys),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


def rewrite(path: Path, change) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in change(lines)))


def test_an_untouched_export_verifies_offline(files, world):
    from django.db import connection

    code, out = run_offline(files["entries"], files["digests"], files["keys"])
    assert code == 0, out
    # On PostgreSQL the entries digests carry a store hash, signed with the
    # rest of the header: the offline verifier checks the signature over it
    # and does not need it.
    documents = [json.loads(line) for line in files["digests"].read_text().splitlines()]
    with_store_hash = [d for d in documents if "storeHash" in d["header"]]
    assert bool(with_store_hash) == (connection.vendor == "postgresql")
    assert "OK: verified through" in out and f"{len(world.entries)} entries" in out
    # The secrets were masked in the export, and their hashes stand in.
    records = [json.loads(line) for line in files["entries"].read_text().splitlines()]
    assert "sk-test-123" not in files["entries"].read_text()
    assert all("beforeSha256" in r for r in records if r["before"])


def test_a_tampered_export_is_named_offline(files, world, tmp_path):
    records = [json.loads(line) for line in files["entries"].read_text().splitlines()]
    changed, deleted = records[10]["id"], records[20]["id"]
    first = AuditDigest.objects.get(seq=1)
    forged = dict(records[30], id="0" * 23 + "f", description="Forged")
    forged["createdAt"] = (first.through - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def change(lines):
        out = []
        for r in lines:
            if r["id"] == changed:
                r = dict(r, description="Nothing happened")
            if r["id"] != deleted:
                out.append(r)
        return [*out, forged]

    rewrite(files["entries"], change)
    code, out = run_offline(files["entries"], files["digests"], files["keys"])
    assert code == 1, out
    assert f"Entry {changed}" in out and "was changed after it was sealed" in out
    assert f"Entry {deleted}" in out and "has been deleted" in out
    assert f"Entry {forged['id']}" in out and "inserted after sealing" in out


def test_removed_and_resigned_digest_files_are_named_offline(files):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dmobs.integrity import keys as keymod
    from dmobs.integrity.digest import header_text

    attacker = Ed25519PrivateKey.generate()

    def change(docs):
        out = []
        for doc in docs:
            if doc["header"]["seq"] == 2:
                continue  # removed
            if doc["header"]["seq"] == 3:
                doc["header"]["keyId"] = keymod.key_id(attacker.public_key())
                doc["header"]["publicKey"] = keymod.public_b64(attacker.public_key())
                doc["signature"] = keymod.sign(attacker, header_text(doc["header"]).encode())
            out.append(doc)
        return out

    rewrite(files["digests"], change)
    code, out = run_offline(files["entries"], files["digests"], files["keys"])
    assert code == 1
    assert "Digest 2 has been removed" in out
    assert "Digest 3 is signed with key" in out and "re-signed" in out


def test_another_public_key_is_not_trusted(files, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dmobs.integrity import keys as keymod

    other = tmp_path / "other.pem"
    other.write_text(keymod.public_pem(Ed25519PrivateKey.generate().public_key()))
    code, out = run_offline(files["entries"], files["digests"], other)
    assert code == 1 and "none of them trusted" in out


def test_the_screens_masked_ndjson_export_verifies_with_masked_entries_noted(
    files, world, client, tmp_path
):
    """The normal export masks secret values and carries no hashes: those
    entries are checked for presence, and the report says their content was not."""
    export = download(
        client, f"{LIST_URLS['manage']}/export?format=ndjson&range=all", tmp_path / "export.ndjson"
    )
    sealed = {r["id"] for r in map(json.loads, files["entries"].read_text().splitlines())}
    rewrite(export, lambda lines: [r for r in lines if r["id"] in sealed])
    code, out = run_offline(export, files["digests"], files["keys"])
    assert code == 0, out
    assert "had masked values: their presence was checked, their content was not" in out


def test_tenant_proofs_verify_offline(world, key, client, tmp_path):
    seal()
    client.force_login(world.users["sarah"])
    base = f"{LIST_URLS['dashboard']}/integrity"
    entries = download(client, f"{base}/entries.ndjson", tmp_path / "entries.ndjson")
    proofs = download(client, f"{base}/digests.ndjson", tmp_path / "proofs.ndjson")
    keys = download(client, "/integrity/keys.json", tmp_path / "keys.json")
    sealed = {
        line.split(" ")[0]
        for d in map(json.loads, proofs.read_text().splitlines())
        for line in d["lines"].splitlines()
    }
    rewrite(entries, lambda lines: [r for r in lines if r["id"] in sealed])
    code, out = run_offline(entries, proofs, keys)
    assert code == 0, out
    acme = world.tenants["acme"].ref_id
    assert f"{AuditLog.objects.filter(tenant_id=acme, pk__in=sealed).count()} entries" in out
    changed = sorted(sealed)[0]
    rewrite(
        entries,
        lambda lines: [
            dict(r, actorName="Someone else") if r["id"] == changed else r for r in lines
        ],
    )
    code, out = run_offline(entries, proofs, keys)
    assert code == 1 and f"Entry {changed}" in out

    # A proof whose entry list was edited no longer leads to the signed root.
    def drop_line(docs):
        for doc in docs:
            if doc["lines"]:
                doc["lines"] = "".join(doc["lines"].splitlines(keepends=True)[1:])
                break
        return docs

    rewrite(proofs, drop_line)
    code, out = run_offline(entries, proofs, keys)
    assert code == 1 and "does not match the signed root" in out


def test_audit_digests_command_writes_the_files(world, key, tmp_path):
    seal()
    out = tmp_path / "digests.ndjson"
    keys = tmp_path / "keys.json"
    entries = tmp_path / "entries.ndjson"
    call_command(
        "audit_digests",
        f"--out={out}",
        f"--public-key={keys}",
        f"--entries={entries}",
        stdout=StringIO(),
    )
    assert len(out.read_text().splitlines()) == AuditDigest.objects.count()
    assert (
        offline.main(["--entries", str(entries), "--digests", str(out), "--public-key", str(keys)])
        == 0
    )


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.ndjson"
    bad.write_text("{not json\n")
    assert offline.main(["--entries", str(bad), "--digests", str(bad), "--public-key", "AAAA"]) == 2
    assert "bad.ndjson:1: not JSON" in capsys.readouterr().err
