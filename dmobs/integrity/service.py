"""Entry points for commands and screens: verify the store, export digests,
the published public keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.conf import settings
from django.db import connections

from dmobs.integrity import keys as keymod
from dmobs.integrity.canonical import canonical_state, format_created
from dmobs.integrity.digest import KIND_ROTATION
from dmobs.integrity.seal import digest_rows, load_digests
from dmobs.integrity.sources import _VALUES, source_for, tenant_q
from dmobs.integrity.verify import Report, check_blocks, verify
from dmobs.models import AuditLog


def trusted_key_ids() -> set[str]:
    return {keymod.key_id(key) for key in keymod.trusted_public_keys()}


def verify_store(
    *,
    tenant: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    alias: str | None = None,
    limit: int = 1000,
    workers: int = 1,
) -> Report:
    """Verify the audit store against its digests (``tenant``: one tenant's
    entries, ``""`` platform entries, None everything).

    ``workers`` > 1 checks the blocks in that many threads, each on its own
    database connection (PostgreSQL, outside a transaction only: a
    transaction's view of the data cannot be shared with other connections).
    """
    alias = alias or settings.AUDIT_DB_ALIAS
    map_blocks = None
    connection = connections[alias]
    if workers > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        map_blocks = _threads_map(workers)
    return verify(
        load_digests(alias, lazy=True),
        source_for(alias),
        trusted_key_ids(),
        tenant=tenant,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        map_blocks=map_blocks,
    )


def _threads_map(workers: int):
    """A ``map_blocks`` for ``verify`` that checks slices of the blocks in
    ``workers`` threads, each on its own database connection (closed after).

    Threads, not processes: the database writes each block's canonical text
    (about half the CPU per entry on PostgreSQL, in its own backend per
    connection), so the blocks' queries run in parallel even though the
    hashing shares one interpreter; and forking a process that has other
    threads (the audit writer, a server's) can leave a lock held in the child.
    """

    def run(context, tasks):
        if len(tasks) < 2:
            return [check_blocks(context, tasks)]
        size = max(1, -(-len(tasks) // workers))
        slices = [tasks[i : i + size] for i in range(0, len(tasks), size)]

        def check(part):
            try:
                return check_blocks(context, part)
            finally:
                connections.close_all()  # this thread's connections only

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
            return list(pool.map(check, slices))

    return run


def digest_lines(*, tenant: str | None = None, alias: str | None = None) -> Iterator[str]:
    """NDJSON, one digest per line: full digests, or with ``tenant`` that
    tenant's proofs (no other tenant's ids or hashes)."""
    for row in digest_rows(alias).order_by("seq").iterator(chunk_size=100):
        digest = row.to_digest()
        if tenant is not None:
            digest = digest.tenant_proof(tenant)
        yield json.dumps(digest.to_document(), ensure_ascii=False, separators=(",", ":")) + "\n"


def published_keys(alias: str | None = None) -> dict:
    """The trusted public keys and every key the chain names (rotations)."""
    keys: dict[str, dict] = {}
    try:
        trusted = keymod.trusted_public_keys()
    except keymod.KeyProblem:
        trusted = []
    for key in trusted:
        keys[keymod.key_id(key)] = {
            "keyId": keymod.key_id(key),
            "algorithm": "Ed25519",
            "publicKey": keymod.public_b64(key),
            "pem": keymod.public_pem(key),
            "trusted": True,
        }
    for row in digest_rows(alias).filter(kind=KIND_ROTATION).order_by("seq"):
        header = json.loads(row.header)
        for kid, public in (
            (header.get("previousKeyId"), header.get("previousPublicKey")),
            (header.get("keyId"), header.get("publicKey")),
        ):
            if kid and kid not in keys:
                keys[kid] = {
                    "keyId": kid,
                    "algorithm": "Ed25519",
                    "publicKey": public,
                    "trusted": False,
                    "namedBy": f"rotation digest {row.seq}",
                }
    return {"format": "dmobs-audit-keys/1", "keys": list(keys.values())}


_STORED = (
    "id",
    "tenantId",
    "actorType",
    "actorId",
    "actorName",
    "action",
    "resourceType",
    "resourceId",
    "resourceName",
    "description",
    "before",
    "after",
    "traceId",
    "createdAt",
)


def entry_records(*, tenant: str | None = None, alias: str | None = None) -> Iterator[dict]:
    """Every entry (of ``tenant``) as a record in its canonical values: stored
    names, states with canonical numbers, createdAt to the millisecond. Hashing
    a record (``canonical.record_hash``) gives the sealed hash of an unchanged entry."""
    qs = AuditLog.objects.using(alias or settings.AUDIT_DB_ALIAS).filter(tenant_q(tenant))
    for row in qs.order_by("created_at", "id").values_list(*_VALUES).iterator(chunk_size=2000):
        record = dict(zip(_STORED, row, strict=True))
        record["id"] = str(record["id"])
        record["before"] = canonical_state(record["before"])
        record["after"] = canonical_state(record["after"])
        record["createdAt"] = format_created(record["createdAt"])
        yield record
