"""The sealer: seals the entries of ``audit_logs`` in signed, chained blocks.

Sealing order (why late arrivals never break an earlier block)
----------------------------------------------------------------
An entry's ``createdAt`` is set by whoever wrote it, when it happened; it may
reach the store much later (a spool replayed after an outage, another writer's
retries, a writer whose clock is behind). Sealing by ``createdAt`` alone would
leave such an entry inside the time range of a block that is already signed:
the block would look incomplete, or the entry forged. So the sealer keeps a
*watermark* W (in every digest header) and seals in two kinds of block:

1. ``entries`` blocks cover a time range ``(after, through]`` of ``createdAt``,
   the ranges of successive blocks touching end to end. A run seals every entry
   with ``W < createdAt <= now - settle`` (``settle``, default 10 s, lets the
   writer's in-flight batches land) in ``(createdAt, id)`` order, cut into blocks
   of about ``block_size`` (ending at a millisecond boundary), and
   moves W to ``now - settle``.
2. ``late`` blocks hold entries that arrived after their time was sealed, i.e.
   ``createdAt <= W`` but in no digest. Each run counts the entries with
   ``createdAt <= W`` and compares with ``sealedTotal`` (in the last header);
   when they differ it finds the unsealed ids ("seen" sets: each entries block's
   ids plus every late block's ids, range by range) and seals them, oldest
   first, in late blocks before the new entries. A late block names no range:
   its entries are checked wherever their time falls, and the verifier lists
   them as *sealed late*, with how late, so a spool replay is visible and a
   forged back-dated entry that got sealed is too.

An earlier block is never reopened or rewritten; digests are only appended.
Deleting an entry makes the count smaller, so a late arrival in the same run
could hide behind it; the sweep then still runs (counts differ) and the
verifier reports the deletion either way.

Each digest is written as soon as it is signed, so a sealer stopped half-way
leaves a valid chain, and the next run continues from the last digest. ``seq``
is unique: of two sealers racing, one wins and the other's insert fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError

from dmobs.integrity import keys as keymod
from dmobs.integrity.canonical import FORMAT as CANONICAL_FORMAT
from dmobs.integrity.canonical import format_created
from dmobs.integrity.digest import (
    DIGEST_FORMAT,
    KIND_ENTRIES,
    KIND_LATE,
    KIND_ROTATION,
    STORE_HASH_KIND,
    Digest,
    groups_root,
    header_text,
    parse_leaves,
)
from dmobs.integrity.models import AuditDigest
from dmobs.integrity.sources import Hashed, PostgresSource, source_for, store_hash_of


class SealError(Exception):
    """The sealer cannot go on (no key, a rotation without the old key, a race)."""


def format_exact(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_exact(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def end_of_ms(value: datetime) -> datetime:
    """The last microsecond of ``value``'s millisecond. Blocks end there, never
    inside a millisecond, so an export's millisecond ``createdAt`` (and
    MongoDB's) falls in the same block as the stored microseconds."""
    return truncate_ms(value) + timedelta(microseconds=999)


@dataclass
class SealResult:
    digests: list[Digest] = field(default_factory=list)
    entries: int = 0
    late: int = 0
    rotated: bool = False
    watermark: datetime | None = None
    # Sealed entries the store no longer counts (deleted, or moved in time):
    # the sealer cannot say which; audit_verify can.
    missing: int = 0


def digest_rows(alias: str | None = None):
    return AuditDigest.objects.using(alias or settings.AUDIT_DB_ALIAS)


def load_digests(alias: str | None = None, *, lazy: bool = False) -> list[Digest]:
    """Every stored digest, in seq order (a row that does not parse is skipped
    here and shows up as a removed digest).

    ``lazy``: headers and signatures only, each digest reading its groups when
    they are needed (``Digest.loaded``), so memory stays flat however long the
    chain is; groups that do not parse then make the digest an altered one.
    """
    result = []
    rows = digest_rows(alias).order_by("seq")
    if lazy:
        rows = rows.defer("groups")
    for row in rows:
        try:
            if lazy:
                digest = Digest(
                    json.loads(row.header),
                    row.signature,
                    rotation_signature=row.rotation_signature or None,
                    groups_loader=_groups_loader(alias, row.pk),
                )
            else:
                digest = row.to_digest()
        except (ValueError, TypeError):
            continue
        result.append(digest)
    return result


def _groups_loader(alias: str | None, pk: str) -> Callable[[], dict[str, str]]:
    def load() -> dict[str, str]:
        text = digest_rows(alias).filter(pk=pk).values_list("groups", flat=True).first()
        groups = json.loads(text) if text is not None else None
        if not isinstance(groups, dict):
            raise ValueError("the digest's groups are not an object")
        return groups

    return load


class Sealer:
    def __init__(
        self,
        *,
        alias: str | None = None,
        key=None,
        previous_key=None,
        block_size: int | None = None,
        settle: float | None = None,
        heartbeat: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Callable[[str], None] | None = None,
    ):
        self.alias = alias or settings.AUDIT_DB_ALIAS
        self.key = key if key is not None else keymod.signing_key()
        self._previous_key = previous_key
        self.block_size = block_size or settings.DMOBS_AUDIT_SEAL_BLOCK
        self.settle = settings.DMOBS_AUDIT_SEAL_SETTLE if settle is None else settle
        self.heartbeat = settings.DMOBS_AUDIT_SEAL_HEARTBEAT if heartbeat is None else heartbeat
        self.clock = clock
        self.progress = progress or (lambda message: None)
        self.source = source_for(self.alias)
        self.key_id = keymod.key_id(self.key.public_key())
        self.public = keymod.public_b64(self.key.public_key())

    # --- state -------------------------------------------------------------------
    def _last(self) -> Digest | None:
        row = digest_rows(self.alias).order_by("-seq").first()
        return row.to_digest() if row is not None else None

    # --- writing -----------------------------------------------------------------
    def _write(
        self, header: dict[str, Any], groups: dict[str, str], *, rotation_key=None
    ) -> Digest:
        text = header_text(header)
        signature = keymod.sign(self.key, text.encode())
        rotation_signature = keymod.sign(rotation_key, text.encode()) if rotation_key else None
        row = AuditDigest(
            seq=header["seq"],
            kind=header["kind"],
            sealed_at=parse_exact(header["sealedAt"]),
            after=parse_exact(header.get("after")),
            through=parse_exact(header.get("through")),
            count=header["count"],
            key_id=header["keyId"],
            header=text,
            signature=signature,
            rotation_signature=rotation_signature,
            groups=json.dumps(groups, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
        )
        try:
            row.save(using=self.alias)
        except IntegrityError as exc:
            raise SealError(
                f"digest {header['seq']} was written by someone else meanwhile "
                "(another sealer running?); this run stops, the next one continues"
            ) from exc
        # Without its groups (read back when asked): a first seal of a long log
        # writes a thousand digests and its result must not hold every entry's line.
        return Digest(
            header,
            signature,
            rotation_signature=rotation_signature,
            groups_loader=_groups_loader(self.alias, row.pk),
        )

    def _header(self, last: Digest | None, kind: str, now: datetime, **fields: Any) -> dict:
        header = {
            "format": DIGEST_FORMAT,
            "canonical": CANONICAL_FORMAT,
            "seq": (last.seq + 1) if last else 1,
            "kind": kind,
            "sealedAt": format_exact(now),
            "previous": last.hash if last else None,
            "keyId": self.key_id,
            "publicKey": self.public,
            "after": None,
            "through": None,
            "from": None,
            "to": None,
            "count": 0,
            "tenants": 0,
            "root": None,
            "watermark": last.header.get("watermark") if last else None,
            "sealedTotal": int(last.header.get("sealedTotal", 0)) if last else 0,
        }
        header.update(fields)
        return header

    def _block(self, last, kind, now, entries: list[Hashed], **fields) -> Digest:
        groups: dict[str, list[str]] = {}
        for entry_id, tenant, _created, entry_hash in entries:
            groups.setdefault(tenant, []).append(f"{entry_id} {entry_hash}\n")
        joined = {tenant: "".join(lines) for tenant, lines in groups.items()}
        root, count = groups_root(joined)
        created = [e[2] for e in entries]
        header = self._header(
            last,
            kind,
            now,
            count=count,
            tenants=len(joined),
            root=root,
            **{"from": format_created(min(created)) if created else None},
            to=format_created(max(created)) if created else None,
            **fields,
        )
        header["sealedTotal"] += count
        return self._write(header, joined)

    # --- a run -------------------------------------------------------------------
    def seal(self) -> SealResult:
        result = SealResult()
        now = self.clock()
        last = self._last()
        if last is not None and last.header.get("keyId") != self.key_id:
            last = self._rotate(last, now)
            result.rotated = True
            result.digests.append(last)
        watermark = parse_exact(last.header.get("watermark")) if last else None
        horizon = truncate_ms(now - timedelta(seconds=self.settle)) - timedelta(microseconds=1)
        if watermark is not None and horizon < watermark:
            horizon = watermark

        if watermark is not None:
            sealed_total = int(last.header.get("sealedTotal", 0))
            stored = self.source.count(None, watermark)
            if stored != sealed_total:
                late_ids = self._unsealed(watermark)
                result.missing = max(0, sealed_total - (stored - len(late_ids)))
                if late_ids:
                    self.progress(f"{len(late_ids)} late entries to seal")
                    late = sorted(self.source.hashed_by_ids(late_ids), key=lambda e: (e[2], e[0]))
                    for start in range(0, len(late), self.block_size):
                        chunk = late[start : start + self.block_size]
                        last = self._block(last, KIND_LATE, now, chunk)
                        result.digests.append(last)
                        result.late += len(chunk)

        after = watermark
        sealed_any = False
        for block, through in self._cut(self._sealed_between(watermark, horizon), horizon):
            last = self._block(
                last,
                KIND_ENTRIES,
                now,
                [entry for entry, _line_hash in block],
                after=format_exact(after) if after else None,
                through=format_exact(through),
                watermark=format_exact(through),
                **self._store_hash(block),
            )
            result.digests.append(last)
            result.entries += len(block)
            sealed_any = True
            after = through
            self.progress(
                f"digest {last.seq}: {len(block)} entries through {format_exact(through)}"
            )
        if not sealed_any and self._heartbeat_due(last, now, horizon, watermark):
            last = self._block(
                last,
                KIND_ENTRIES,
                now,
                [],
                after=format_exact(watermark) if watermark else None,
                through=format_exact(horizon),
                watermark=format_exact(horizon),
                **self._store_hash([]),
            )
            result.digests.append(last)
        result.watermark = parse_exact(last.header.get("watermark")) if last else None
        return result

    def _sealed_between(self, after, through) -> Iterator[tuple[Hashed, bytes | None]]:
        """The entries to seal, each with its line hash on PostgreSQL (see
        ``_store_hash``), None elsewhere."""
        if isinstance(self.source, PostgresSource):
            return self.source.sealed_between(after, through)
        return ((entry, None) for entry in self.source.hashed_between(after, through))

    def _store_hash(self, block: list[tuple[Hashed, bytes | None]]) -> dict:
        """``storeHash`` for an entries block's header, on PostgreSQL: from the
        lines the block's entries were read as (``PostgresSource._line``), so
        it is exactly the block's entries; the verifier computes the same from
        the store's range in SQL alone while nothing changed."""
        if not isinstance(self.source, PostgresSource):
            return {}
        line_hashes = [line_hash for _entry, line_hash in block]
        return {"storeHash": {"kind": STORE_HASH_KIND, "hash": store_hash_of(line_hashes)}}

    def _heartbeat_due(self, last, now, horizon, watermark) -> bool:
        """An empty block moves the watermark (and "verified through") on when
        nothing was written for ``heartbeat`` seconds."""
        if watermark is not None and horizon <= watermark:
            return False
        if last is None:
            return True
        sealed_at = parse_exact(last.header["sealedAt"])
        return (now - sealed_at).total_seconds() >= self.heartbeat

    def _cut(self, entries: Iterator[tuple[Hashed, bytes | None]], horizon: datetime):
        """Blocks of about ``block_size`` (entry, line hash) with the createdAt
        each ends at; the last block ends at ``horizon``."""
        block: list = []
        for entry in entries:
            created = entry[0][2]
            if len(block) >= self.block_size and truncate_ms(created) != truncate_ms(
                block[-1][0][2]
            ):
                yield block, end_of_ms(block[-1][0][2])
                block = []
            block.append(entry)
        if block:
            yield block, horizon

    def _unsealed(self, watermark: datetime) -> list[str]:
        """Ids with createdAt <= watermark in no digest (range by range)."""
        digests = load_digests(self.alias, lazy=True)
        late_ids: set[str] = set()
        for digest in digests:
            if digest.kind == KIND_LATE:
                late_ids.update(eid for eid, _ in parse_leaves(digest.lines_for(None)))
        missing: list[str] = []
        previous_through = None
        for digest in digests:
            if digest.kind != KIND_ENTRIES:
                continue
            through = parse_exact(digest.header["through"])
            sealed = {eid for eid, _ in parse_leaves(digest.lines_for(None))}
            for eid in self.source.ids_between(previous_through, through):
                if eid not in sealed and eid not in late_ids:
                    missing.append(eid)
            previous_through = through
        if previous_through is not None and previous_through < watermark:
            for eid in self.source.ids_between(previous_through, watermark):
                if eid not in late_ids:
                    missing.append(eid)
        return missing

    def _rotate(self, last: Digest, now: datetime) -> Digest:
        old_id = last.header.get("keyId")
        previous = self._previous_key
        if previous is None:
            previous = keymod.previous_signing_key()
        if previous is None or keymod.key_id(previous.public_key()) != old_id:
            raise SealError(
                f"the digests are signed with key {old_id}; the configured key is {self.key_id}. "
                "To rotate, also set DMOBS_AUDIT_PREVIOUS_SIGNING_KEY(_FILE) to the key "
                f"{old_id} for one run: it countersigns the rotation digest."
            )
        header = self._header(
            last,
            KIND_ROTATION,
            now,
            root=groups_root({})[0],
            previousKeyId=old_id,
            previousPublicKey=keymod.public_b64(previous.public_key()),
        )
        self.progress(f"digest {header['seq']}: key rotation {old_id} -> {self.key_id}")
        return self._write(header, {}, rotation_key=previous)
