"""Shared by the tamper-evidence tests of every store (tests/dmobs/test_integrity.py
for SQLite and PostgreSQL, tests/mongo/test_integrity.py for MongoDB).

``Tamper`` changes the store the way someone with the database's own tools
would: raw SQL as the table owner with the permanence triggers switched off, or
PyMongo on the collection. Nothing here goes through the ORM's guards.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import connections

from dmobs.integrity import keys as keymod
from dmobs.integrity.digest import header_text
from dmobs.integrity.seal import Sealer
from dmobs.models import AuditDigest, AuditLog


def raw_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    ).decode()


def use_key(monkeypatch, key: Ed25519PrivateKey | None = None) -> Ed25519PrivateKey:
    """Make ``key`` (a new one by default) the sealer's key, from the environment."""
    key = key or Ed25519PrivateKey.generate()
    monkeypatch.setenv("DMOBS_AUDIT_SIGNING_KEY", raw_b64(key))
    monkeypatch.delenv("DMOBS_AUDIT_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("DMOBS_AUDIT_PUBLIC_KEYS", raising=False)
    monkeypatch.delenv("DMOBS_AUDIT_PUBLIC_KEY_FILE", raising=False)
    return key


def seal(**kwargs):
    kwargs.setdefault("settle", 0)
    kwargs.setdefault("block_size", 50)
    return Sealer(**kwargs).seal()


def alias() -> str:
    return settings.AUDIT_DB_ALIAS


class SqlTamper:
    """SQLite has no triggers; on PostgreSQL the owner switches the permanence
    trigger off for the statement (inside the test's transaction)."""

    def __init__(self, db_alias: str):
        self.connection = connections[db_alias]
        self.pg = self.connection.vendor == "postgresql"

    def _run(self, table: str, sql: str, params: list) -> int:
        with self.connection.cursor() as cursor:
            if self.pg:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_immutable_rows")
            cursor.execute(sql, params)
            count = cursor.rowcount
            if self.pg:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_immutable_rows")
        assert count == 1, f"{sql} changed {count} rows"
        return count

    def change_description(self, entry_id: str, text: str) -> None:
        self._run(
            "audit_logs", "UPDATE audit_logs SET description = %s WHERE id = %s", [text, entry_id]
        )

    def change_after(self, entry_id: str, after: dict) -> None:
        value = json.dumps(after)
        cast = "::jsonb" if self.pg else ""
        self._run(
            "audit_logs", f"UPDATE audit_logs SET after = %s{cast} WHERE id = %s", [value, entry_id]
        )

    def delete_entry(self, entry_id: str) -> None:
        self._run("audit_logs", "DELETE FROM audit_logs WHERE id = %s", [entry_id])

    def insert_entry(self, entry: AuditLog) -> None:
        # A plain INSERT is allowed to the owner (and to the app role) anyway.
        entry.save(using=self.connection.alias)

    def delete_digest(self, seq: int) -> None:
        self._run("audit_digests", "DELETE FROM audit_digests WHERE seq = %s", [seq])

    def replace_digest(self, seq: int, header: str, signature: str, key_id: str) -> None:
        self._run(
            "audit_digests",
            'UPDATE audit_digests SET header = %s, signature = %s, "keyId" = %s WHERE seq = %s',
            [header, signature, key_id, seq],
        )

    def replace_groups(self, seq: int, groups: str) -> None:
        self._run(
            "audit_digests", "UPDATE audit_digests SET groups = %s WHERE seq = %s", [groups, seq]
        )


class MongoTamper:
    def __init__(self, db_alias: str):
        self.connection = connections[db_alias]
        self.logs = self.connection.get_collection("audit_logs")
        self.digests = self.connection.get_collection("audit_digests")

    @staticmethod
    def _id(entry_id: str):
        from bson import ObjectId

        return ObjectId(entry_id)

    def change_description(self, entry_id: str, text: str) -> None:
        result = self.logs.update_one({"_id": self._id(entry_id)}, {"$set": {"description": text}})
        assert result.modified_count == 1

    def change_after(self, entry_id: str, after: dict) -> None:
        result = self.logs.update_one({"_id": self._id(entry_id)}, {"$set": {"after": after}})
        assert result.modified_count == 1

    def delete_entry(self, entry_id: str) -> None:
        assert self.logs.delete_one({"_id": self._id(entry_id)}).deleted_count == 1

    def insert_entry(self, entry: AuditLog) -> None:
        entry.save(using=self.connection.alias)

    def delete_digest(self, seq: int) -> None:
        assert self.digests.delete_one({"seq": seq}).deleted_count == 1

    def replace_digest(self, seq: int, header: str, signature: str, key_id: str) -> None:
        result = self.digests.update_one(
            {"seq": seq}, {"$set": {"header": header, "signature": signature, "keyId": key_id}}
        )
        assert result.modified_count == 1

    def replace_groups(self, seq: int, groups: str) -> None:
        result = self.digests.update_one({"seq": seq}, {"$set": {"groups": groups}})
        assert result.modified_count == 1


def tamper_for(db_alias: str | None = None):
    db_alias = db_alias or alias()
    if connections[db_alias].vendor == "mongodb":
        return MongoTamper(db_alias)
    return SqlTamper(db_alias)


def resign(tamper, seq: int, attacker: Ed25519PrivateKey) -> str:
    """Re-sign digest ``seq`` with ``attacker``'s key (header names that key)."""
    row = AuditDigest.objects.using(alias()).get(seq=seq)
    header = json.loads(row.header)
    header["keyId"] = keymod.key_id(attacker.public_key())
    header["publicKey"] = keymod.public_b64(attacker.public_key())
    text = header_text(header)
    tamper.replace_digest(seq, text, keymod.sign(attacker, text.encode()), header["keyId"])
    return header["keyId"]


def digest_entry_ids(seq: int, tenant: str | None = None) -> list[str]:
    digest = AuditDigest.objects.using(alias()).get(seq=seq).to_digest()
    return [line.split(" ")[0] for line in digest.lines_for(tenant).splitlines()]


def forged_entry(created_at: datetime, tenant_id: str | None) -> AuditLog:
    return AuditLog(
        tenant_id=tenant_id,
        actor_type="human",
        actor_id="u-forger",
        actor_name="Forger",
        action="approved",
        resource_type="payment",
        resource_id="pay-1",
        resource_name="Refund",
        description="Forger approved the payment Refund",
        before={"status": "pending"},
        after={"status": "approved"},
        trace_id="cd" * 16,
        created_at=created_at,
    )


def an_hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)
