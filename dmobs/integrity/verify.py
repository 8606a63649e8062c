"""The verifier: digests + hashed entries + trusted keys -> a report.

It does not know where entries come from: ``sources`` reads the audit store,
``offline`` an export. What it checks, in order:

1. The chain of digests (headers only, always the whole chain): seq 1, 2, 3...
   without gaps (a gap is a removed digest); each signature valid for its header
   (else the digest was altered); each digest signed with the key the chain
   expects at that point (else re-signed), where the key changes only through a
   rotation digest countersigned by the key before it, and some key of the
   chain is trusted; each ``previous`` equal to the hash of the digest before it;
   each digest's entry lists matching its signed root.
2. The entries, block by block: every entry the store holds with ``createdAt``
   in an entries digest's range must be in that digest (or in a late digest)
   with the same hash (else *changed*; absent from every digest: *not sealed*,
   i.e. inserted after sealing with an old timestamp); every id a digest lists
   must be in the store (else *deleted*). Entries of late digests are checked
   wherever their time falls and listed as *sealed late*.
3. Entries newer than the last seal are counted as *pending*.

With ``tenant`` only that tenant's groups and entries are used (and a tenant
proof, which carries just that group, is enough).

Digests read from the store are lazy (``load_digests(lazy=True)``): step 1
checks their headers, and each digest's entry lists are read, checked against
its signed root and dropped when its block is checked (``digest_lines``), so
memory does not grow with the chain.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from dmobs.integrity.canonical import format_created
from dmobs.integrity.digest import (
    KIND_ENTRIES,
    KIND_LATE,
    KIND_ROTATION,
    STORE_HASH_KIND,
    Digest,
    parse_leaves,
)
from dmobs.integrity.keys import key_id, signature_valid

# Problems: the log or the digests are not what was sealed.
CHANGED = "changed"
DELETED = "deleted"
NOT_SEALED = "not_sealed"
DIGEST_REMOVED = "digest_removed"
DIGEST_RESIGNED = "digest_resigned"
DIGEST_ALTERED = "digest_altered"
CHAIN_BROKEN = "chain_broken"
UNTRUSTED_KEY = "untrusted_key"
ROTATION_INVALID = "rotation_invalid"
# Notices: worth knowing, not a failure.
SEALED_LATE = "sealed_late"
PENDING = "pending"
MASKED = "masked"  # offline only: an export that masked values (content not checkable)
NOTICES = (SEALED_LATE, PENDING, MASKED)

LABELS = {
    CHANGED: "Changed entries",
    DELETED: "Deleted entries",
    NOT_SEALED: "Entries in no digest (inserted after sealing, with an old timestamp)",
    DIGEST_REMOVED: "Removed digests",
    DIGEST_RESIGNED: "Re-signed digests",
    DIGEST_ALTERED: "Altered digests",
    CHAIN_BROKEN: "Broken chain links",
    UNTRUSTED_KEY: "Untrusted signing key",
    ROTATION_INVALID: "Invalid key rotations",
    SEALED_LATE: "Entries sealed late (arrived after their time was sealed)",
    PENDING: "Entries not sealed yet (newer than the last seal)",
    MASKED: "Entries with masked values in the export (present, content not checkable)",
}


@dataclass
class Finding:
    kind: str
    message: str
    entry_id: str | None = None
    seq: int | None = None

    @property
    def is_problem(self) -> bool:
        return self.kind not in NOTICES

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "id": self.entry_id, "seq": self.seq}


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    digests: int = 0
    entries: int = 0
    sealed_through: datetime | None = None
    pending: int = 0
    tenant: str | None = None
    limit: int = 1000
    late_seen: set[str] = field(default_factory=set)
    # Entries verified by their block's store hash (PostgreSQL's fast path:
    # nothing per entry in Python); the rest were hashed one by one.
    store_hashed: int = 0

    def merge(self, other: Report) -> None:
        """Add a partial report (of some blocks) to this one."""
        self.entries += other.entries
        self.store_hashed += other.store_hashed
        shown = Counter(f.kind for f in self.findings)
        for finding in other.findings:
            if shown[finding.kind] < self.limit:
                self.findings.append(finding)
                shown[finding.kind] += 1
        self.counts.update(other.counts)

    def add(self, kind: str, message: str, *, entry_id: str | None = None, seq: int | None = None):
        self.counts[kind] += 1
        if self.counts[kind] <= self.limit:
            self.findings.append(Finding(kind, message, entry_id, seq))

    @property
    def ok(self) -> bool:
        return not any(kind not in NOTICES for kind in self.counts)

    @property
    def verified_through(self) -> datetime | None:
        return self.sealed_through if self.ok else None

    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem]

    def notices(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_problem]

    def by_kind(self) -> list[tuple[str, str, int, list[Finding]]]:
        """(kind, label, count, findings shown) for each kind found, problems first."""
        order = [k for k in LABELS if k in self.counts]
        return [
            (k, LABELS[k], self.counts[k], [f for f in self.findings if f.kind == k]) for k in order
        ]

    def summary(self) -> str:
        if self.ok:
            through = format_created(self.sealed_through) if self.sealed_through else "-"
            text = (
                f"OK: verified through {through}: {self.entries} entries in "
                f"{self.digests} digests are present and unchanged."
            )
        else:
            parts = [
                f"{self.counts[k]} {LABELS[k].lower()}"
                for k in LABELS
                if k in self.counts and k not in NOTICES
            ]
            text = "FAILED: " + "; ".join(parts) + "."
        if self.counts[SEALED_LATE]:
            text += f" {self.counts[SEALED_LATE]} entries were sealed late."
        if self.pending:
            text += f" {self.pending} newer entries are not sealed yet."
        if self.counts[MASKED]:
            text += (
                f" {self.counts[MASKED]} entries had masked values: their presence was "
                "checked, their content was not."
            )
        return text

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "verifiedThrough": format_created(self.verified_through)
            if self.verified_through
            else None,
            "sealedThrough": format_created(self.sealed_through) if self.sealed_through else None,
            "digests": self.digests,
            "entries": self.entries,
            "storeHashed": self.store_hashed,
            "pending": self.pending,
            "tenant": self.tenant,
            "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.summary(),
        }


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _raw_key_id(public_b64: str | None) -> str | None:
    try:
        return key_id(base64.b64decode(public_b64 or "", validate=True))
    except (binascii.Error, ValueError):
        return None


def check_chain(digests: list[Digest], trusted_ids: set[str], report: Report) -> list[Digest]:
    """Step 1; returns the digests in seq order (duplicates dropped)."""
    ordered: list[Digest] = []
    seen: set[int] = set()
    for digest in sorted(digests, key=lambda d: d.seq):
        if digest.seq in seen:
            report.add(DIGEST_ALTERED, f"Digest {digest.seq} appears twice.", seq=digest.seq)
            continue
        seen.add(digest.seq)
        ordered.append(digest)

    # Signatures and entry lists.
    for digest in ordered:
        text = digest.text.encode()
        header = digest.header
        if _raw_key_id(header.get("publicKey")) != header.get("keyId") or not signature_valid(
            header.get("publicKey") or "", digest.signature, text
        ):
            digest.problems.append("signature")
            report.add(
                DIGEST_ALTERED,
                f"Digest {digest.seq}: the signature does not match its header "
                "(the header was changed after signing).",
                seq=digest.seq,
            )
        if not digest.lazy:  # a lazy digest's lists are checked when read (digest_lines)
            problem = digest.check_content()
            if problem:
                _content_problem(report, digest, problem)

    # The key the chain expects for each digest, from the valid rotations.
    rotations = []
    for digest in ordered:
        if digest.kind != KIND_ROTATION or "signature" in digest.problems:
            continue
        header = digest.header
        old_public = header.get("previousPublicKey") or ""
        if _raw_key_id(old_public) != header.get("previousKeyId") or not signature_valid(
            old_public, digest.rotation_signature or "", digest.text.encode()
        ):
            report.add(
                ROTATION_INVALID,
                f"Digest {digest.seq}: a key rotation to {header.get('keyId')} that the old key "
                f"{header.get('previousKeyId')} did not countersign.",
                seq=digest.seq,
            )
            continue
        rotations.append(digest)
    keys_in_order: list[tuple[int, str]] = []  # (from seq, key id)
    if rotations:
        keys_in_order.append((0, rotations[0].header["previousKeyId"]))
        for rotation in rotations:
            if rotation.header["previousKeyId"] != keys_in_order[-1][1]:
                report.add(
                    ROTATION_INVALID,
                    f"Digest {rotation.seq}: rotates from key {rotation.header['previousKeyId']}, "
                    f"but the chain's key there is {keys_in_order[-1][1]}.",
                    seq=rotation.seq,
                )
            keys_in_order.append((rotation.seq, rotation.header["keyId"]))
    else:
        signers = Counter(d.header.get("keyId") for d in ordered if "signature" not in d.problems)
        trusted_signers = [k for k, _ in signers.most_common() if k in trusted_ids]
        chosen = trusted_signers[0] if trusted_signers else None
        if chosen is None and signers:
            chosen = signers.most_common(1)[0][0]
        if chosen is not None:
            keys_in_order.append((0, chosen))
    chain_keys = {k for _, k in keys_in_order}
    if ordered and not (chain_keys & trusted_ids):
        report.add(
            UNTRUSTED_KEY,
            "The digests are signed with key(s) "
            f"{', '.join(sorted(k for k in chain_keys if k)) or '-'}, none of them trusted "
            f"(trusted: {', '.join(sorted(trusted_ids)) or 'none'}).",
        )

    def expected_key(seq: int) -> str | None:
        current = None
        for start, kid in keys_in_order:
            if seq >= start:
                current = kid
        return current

    previous: Digest | None = None
    expected_seq = 1
    for digest in ordered:
        if digest.seq > expected_seq:
            for missing in range(expected_seq, digest.seq):
                report.add(
                    DIGEST_REMOVED,
                    f"Digest {missing} has been removed (the chain goes from "
                    f"{expected_seq - 1} to {digest.seq}).",
                    seq=missing,
                )
        wanted = expected_key(digest.seq)
        if "signature" not in digest.problems and wanted and digest.header.get("keyId") != wanted:
            digest.problems.append("key")
            report.add(
                DIGEST_RESIGNED,
                f"Digest {digest.seq} is signed with key {digest.header.get('keyId')}, "
                f"not the chain's key {wanted}: it was re-signed.",
                seq=digest.seq,
            )
        link = digest.header.get("previous")
        if digest.seq == 1 and link is not None:
            report.add(CHAIN_BROKEN, "Digest 1 names a previous digest.", seq=1)
        if previous is not None and previous.seq == digest.seq - 1 and link != previous.hash:
            report.add(
                CHAIN_BROKEN,
                f"Digest {digest.seq} does not follow digest {previous.seq} as stored now: "
                f"digest {previous.seq} was changed or re-signed after {digest.seq} was sealed.",
                seq=digest.seq,
            )
        previous = digest
        expected_seq = digest.seq + 1
    return ordered


def _content_problem(report: Report, digest: Digest, problem: str) -> None:
    digest.problems.append("content")
    report.add(DIGEST_ALTERED, f"Digest {digest.seq}: {problem}.", seq=digest.seq)


def digest_lines(report: Report, digest: Digest, tenant: str | None) -> str:
    """A digest's lines for ``tenant``. A lazy digest's groups are read here,
    checked against its signed root (which ``check_chain`` left to this
    moment, so that they are read once) and dropped after."""
    if not digest.lazy:
        return digest.lines_for(tenant)
    try:
        loaded = digest.loaded()
    except ValueError:
        _content_problem(report, digest, "its entry list does not parse")
        return ""
    problem = loaded.check_content()
    if problem:
        _content_problem(report, digest, problem)
    return loaded.lines_for(tenant)


def verify(
    digests: list[Digest],
    source,
    trusted_ids: set[str],
    *,
    tenant: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    limit: int = 1000,
    map_blocks=None,
) -> Report:
    """Check ``digests`` and the entries of ``source`` (see the module docstring).

    ``map_blocks(check, tasks)`` may run ``check`` over slices of the block
    tasks elsewhere (worker processes) and return the partial reports; the
    default runs them here.
    """
    report = Report(tenant=tenant, limit=limit)
    ordered = check_chain(digests, trusted_ids, report)
    report.digests = len(ordered)

    # Late entries: checked wherever their time falls.
    late: dict[str, tuple[str, int, str]] = {}
    for digest in ordered:
        if digest.kind == KIND_LATE:
            for eid, entry_hash in parse_leaves(digest_lines(report, digest, tenant)):
                late[eid] = (entry_hash, digest.seq, digest.header.get("sealedAt") or "")
        elif digest.kind != KIND_ENTRIES and digest.lazy:
            digest_lines(report, digest, tenant)  # a rotation's (empty) lists, checked

    # Entries digests, each with the range it is checked over: from the
    # previous entries digest still there (so a removed digest's entries show).
    tasks: list[BlockTask] = []
    previous_through: datetime | None = None
    present = {d.seq for d in ordered}
    for digest in ordered:
        if digest.kind != KIND_ENTRIES:
            continue
        through = _parse_time(digest.header.get("through"))
        lower = previous_through
        previous_through = through
        if through is None:
            continue
        report.sealed_through = through
        if (date_from is not None and through < date_from) or (
            date_to is not None and lower is not None and lower >= date_to
        ):
            if digest.lazy:
                digest_lines(report, digest, tenant)  # outside the period: lists checked only
            continue
        tasks.append(
            BlockTask(
                seq=digest.seq,
                lower=lower,
                through=through,
                digest=digest,
                sealed_at=digest.header.get("sealedAt") or "",
                first=digest.header.get("from"),
                last=digest.header.get("to"),
                after_removed=digest.seq > 1 and digest.seq - 1 not in present,
            )
        )

    context = BlockContext(source=source, tenant=tenant, late=late, limit=limit)
    partials = [check_blocks(context, tasks)] if map_blocks is None else map_blocks(context, tasks)
    late_seen: set[str] = set()
    for partial in partials:
        report.merge(partial)
        late_seen |= partial.late_seen

    # Late entries whose time fell outside the ranges scanned (or is gone).
    rest = [eid for eid in late if eid not in late_seen]
    found: set[str] = set()
    for eid, _tenant, created, entry_hash in source.hashed_by_ids(rest, tenant=tenant):
        found.add(eid)
        _check_late(report, late, eid, created, entry_hash)
    for eid in rest:
        if eid not in found:
            report.add(
                DELETED,
                f"Entry {eid}, sealed late in digest {late[eid][1]}, has been deleted.",
                entry_id=eid,
                seq=late[eid][1],
            )

    if previous_through is not None or not ordered:
        report.pending = source.count(previous_through, None, tenant=tenant)
        if report.pending:
            report.add(
                PENDING,
                f"{report.pending} entries are newer than the last seal "
                f"({format_created(previous_through) if previous_through else 'none yet'}).",
            )
    return report


@dataclass
class BlockTask:
    """One entries digest to check against the store (what a worker needs of it)."""

    seq: int
    lower: datetime | None
    through: datetime
    digest: Digest  # lazy for the store's digests: its lines are read by the worker
    sealed_at: str
    first: str | None
    last: str | None
    after_removed: bool = False


@dataclass
class BlockContext:
    source: object
    tenant: str | None
    late: dict[str, tuple[str, int, str]]
    limit: int


def _check_late(report: Report, late, eid: str, created: datetime, entry_hash: str) -> None:
    expected, seq, sealed_at_text = late[eid]
    report.late_seen.add(eid)
    report.entries += 1
    if expected != entry_hash:
        report.add(
            CHANGED,
            f"Entry {eid} ({format_created(created)}) was changed after it was sealed "
            f"(late, in digest {seq}).",
            entry_id=eid,
            seq=seq,
        )
    sealed_at = _parse_time(sealed_at_text) if sealed_at_text else None
    lag = (sealed_at - created) if sealed_at else None
    report.add(
        SEALED_LATE,
        f"Entry {eid} of {format_created(created)} was sealed in digest {seq} at "
        f"{sealed_at_text}"
        + (f", {_duration(lag.total_seconds())} after its time." if lag else "."),
        entry_id=eid,
        seq=seq,
    )


def check_blocks(context: BlockContext, tasks: list[BlockTask]) -> Report:
    """Step 2 for some entries digests: a partial report.

    On the whole log (no tenant), a source that computes store hashes
    (PostgreSQL) first checks each block whose digest signed one by
    comparing it (``_store_hash_verifies``); the other blocks go on below.
    A source that can give a block's lines as the digest lists them
    (``leaf_ranges``: PostgreSQL hashing the entries) has an unchanged block
    checked by comparing two texts; a block that differs (or holds entries
    sealed late) is then checked entry by entry, like every block of a source
    that only yields hashed entries."""
    report = Report(tenant=context.tenant, limit=context.limit)
    source, tenant = context.source, context.tenant
    if tenant is None and hasattr(source, "store_hash"):
        tasks = [task for task in tasks if not _store_hash_verifies(report, source, task)]
    ranges = [(task.lower, task.through) for task in tasks]
    leaf_ranges = getattr(source, "leaf_ranges", None)
    if leaf_ranges is None:
        for task, lo_hi in zip(tasks, ranges, strict=True):
            lines = digest_lines(report, task.digest, tenant)
            _check_rows(report, context, task, lines, source.hashed_between(*lo_hi, tenant=tenant))
        return report
    for task, (leaves, count) in zip(tasks, leaf_ranges(ranges, tenant=tenant), strict=True):
        lines = digest_lines(report, task.digest, tenant)
        if leaves == lines:
            report.entries += count
            continue
        rows = source.hashed_between(task.lower, task.through, tenant=tenant)
        _check_rows(report, context, task, lines, rows)
    return report


def _store_hash_verifies(report: Report, source, task: BlockTask) -> bool:
    """Whether the store's entries of the block's range still have the store
    hash its digest signed (PostgreSQL computes it; no entry comes here): then
    they are the entries sealed, unchanged. Only for a digest whose signature
    and key are the chain's and whose range is the one checked (the digest
    before it is there). Else, or when the hash differs, the block is checked
    entry by entry, which names what changed. The digest's lists are still
    read and checked against its signed root: when they do not match, the
    check entry by entry reports it, as for any block."""
    digest = task.digest
    sealed = digest.header.get("storeHash")
    if (
        digest.problems
        or not isinstance(sealed, dict)
        or sealed.get("kind") != STORE_HASH_KIND
        or _parse_time(digest.header.get("after")) != task.lower
    ):
        return False
    stored = source.store_hash(task.lower, task.through)
    if stored.hash != sealed.get("hash") or stored.count != digest.header.get("count"):
        return False
    if digest.check_content() is not None:
        return False  # reported by the check entry by entry
    report.entries += stored.count
    report.store_hashed += stored.count
    return True


def _check_rows(report: Report, context: BlockContext, task: BlockTask, lines: str, rows) -> None:
    """One block entry by entry: the store's hashed entries against its lines."""
    late = context.late
    expected = dict(parse_leaves(lines))
    pop = expected.pop
    for eid, _tenant, created, entry_hash in rows:
        wanted = pop(eid, None)
        if wanted == entry_hash:
            report.entries += 1
            continue
        if wanted is None:
            if eid in late:
                _check_late(report, late, eid, created, entry_hash)
                continue
            how = (
                f"digest {task.seq - 1}, which has been removed, may have sealed it; "
                "or it was inserted after sealing with an old timestamp."
                if task.after_removed
                else "it was inserted after sealing with an old timestamp."
            )
            report.add(
                NOT_SEALED,
                f"Entry {eid} ({format_created(created)}) is in no digest, though its time "
                f"lies in digest {task.seq}'s range, sealed at {task.sealed_at}: {how}",
                entry_id=eid,
                seq=task.seq,
            )
            continue
        report.entries += 1
        report.add(
            CHANGED,
            f"Entry {eid} ({format_created(created)}) was changed after it was sealed "
            f"in digest {task.seq}.",
            entry_id=eid,
            seq=task.seq,
        )
    for eid in expected:
        report.add(
            DELETED,
            f"Entry {eid}, sealed in digest {task.seq} "
            f"({task.first} to {task.last}), has been deleted.",
            entry_id=eid,
            seq=task.seq,
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
