"""Verify an export offline: entries (NDJSON), digest files and a public key.

    python -m dmobs.integrity.offline --entries entries.ndjson \\
        --digests digests.ndjson --public-key audit-keys.json [--tenant TENANT_ID]

No database and no Django: only this package and ``cryptography``. An auditor
copies ``dmobs/integrity/`` (or the project) and checks what they were given.

* ``--entries``: NDJSON records with the stored field names, one entry a line:
  the integrity export (``/integrity/entries.ndjson`` on the screens,
  ``manage.py audit_digests --entries``), or the screens' NDJSON export. The
  screens' export masks secret values in ``before``/``after``; such an entry
  cannot be recomputed and is listed as *masked*. The integrity export puts
  ``beforeSha256``/``afterSha256`` in place of a masked state instead, so every
  entry is still checked against its sealed hash (see docs/INTEGRITY.md).
  The file must hold every entry of the digests checked (an unfiltered export;
  ``--from``/``--to`` narrow the digests).
* ``--digests``: NDJSON, one digest (or one tenant proof) a line, as
  ``manage.py audit_digests`` and the screens' "Digests" link write them; or a
  directory of ``*.json``/``*.ndjson`` digest files.
* ``--public-key``: the trusted key: a PEM file, base64 of the raw key, or the
  JSON the app publishes at ``/integrity/keys.json`` (its ``trusted`` keys).

Exit status 0 when everything verifies, 1 when something is wrong, 2 for bad input.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from dmobs.integrity.canonical import record_hash
from dmobs.integrity.digest import Digest
from dmobs.integrity.keys import KeyProblem, key_id, load_public
from dmobs.integrity.verify import MASKED, Report, verify
from dmobs.vocabulary import MASK  # what the screens' export puts in place of a secret value


class InputError(Exception):
    pass


def _contains_mask(value) -> bool:
    if isinstance(value, str):
        return value == MASK
    if isinstance(value, dict):
        return any(_contains_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_mask(v) for v in value)
    return False


def _created(record: dict) -> datetime:
    value = record.get("createdAt")
    if not isinstance(value, str):
        raise InputError(f"entry {record.get('id')!r}: createdAt is missing")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


class ExportSource:
    """The entries of an export, in the verifier's source interface."""

    def __init__(self, records: Iterable[dict]):
        rows = []
        self.masked: list[str] = []
        for record in records:
            eid = str(record.get("id"))
            hashes_given = "beforeSha256" in record or "afterSha256" in record
            if not hashes_given and (
                _contains_mask(record.get("before")) or _contains_mask(record.get("after"))
            ):
                self.masked.append(eid)
            rows.append((_created(record), eid, record.get("tenantId") or "", record_hash(record)))
        rows.sort()
        self.rows = rows
        self.times = [r[0] for r in rows]
        self.by_id = {r[1]: r for r in rows}

    @staticmethod
    def _keep(row, tenant: str | None) -> bool:
        return tenant is None or row[2] == tenant

    def hashed_between(self, after, through, *, tenant=None) -> Iterator[tuple]:
        lo = 0 if after is None else bisect.bisect_right(self.times, after)
        hi = len(self.rows) if through is None else bisect.bisect_right(self.times, through)
        for created, eid, group, entry_hash in self.rows[lo:hi]:
            if tenant is None or group == tenant:
                yield eid, group, created, entry_hash

    def hashed_by_ids(self, ids, *, tenant=None) -> Iterator[tuple]:
        for eid in ids:
            row = self.by_id.get(eid)
            if row is not None and self._keep(row, tenant):
                yield row[1], row[2], row[0], row[3]

    def count(self, after, through, *, tenant=None) -> int:
        return sum(1 for _ in self.hashed_between(after, through, tenant=tenant))


def read_ndjson(path: Path) -> Iterator[dict]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: expected a JSON object")
            yield value


def read_digests(path: Path) -> list[Digest]:
    files = sorted([*path.glob("*.json"), *path.glob("*.ndjson")]) if path.is_dir() else [path]
    digests = []
    for file in files:
        for number, doc in enumerate(read_ndjson(file), 1):
            try:
                digests.append(Digest.from_document(doc))
            except ValueError as exc:
                raise InputError(f"{file}:{number}: {exc}") from None
    return digests


def read_public_keys(values: list[str]) -> set[str]:
    ids: set[str] = set()
    for value in values:
        path = Path(value)
        text = path.read_text() if path.exists() else value
        try:
            if text.lstrip().startswith("{"):
                published = json.loads(text)
                for item in published.get("keys", []):
                    if item.get("trusted"):
                        ids.add(key_id(load_public(item["publicKey"], origin=value)))
                continue
            ids.add(key_id(load_public(text, origin=value)))
        except (KeyProblem, KeyError, json.JSONDecodeError) as exc:
            raise InputError(f"--public-key {value}: {exc}") from None
    if not ids:
        raise InputError("no trusted public key given")
    return ids


def verify_export(
    entries: Path,
    digests: Path,
    public_keys: list[str],
    *,
    tenant: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> Report:
    source = ExportSource(read_ndjson(entries))
    loaded = read_digests(digests)
    proofs = {d.tenant for d in loaded if d.groups is None}
    if proofs:
        if len(proofs) > 1:
            raise InputError("the digest files hold proofs of more than one tenant")
        proof_tenant = next(iter(proofs))
        if tenant is not None and tenant != proof_tenant:
            raise InputError(f"the proofs are of tenant {proof_tenant!r}, not {tenant!r}")
        tenant = proof_tenant
    report = verify(
        loaded,
        source,
        read_public_keys(public_keys),
        tenant=tenant,
        date_from=date_from,
        date_to=date_to,
    )
    masked = set(source.masked)
    if masked:
        # A masked entry cannot be recomputed: say so instead of "changed".
        kept = []
        for finding in report.findings:
            if finding.kind == "changed" and finding.entry_id in masked:
                report.counts["changed"] -= 1
                continue
            kept.append(finding)
        if report.counts["changed"] <= 0:
            report.counts.pop("changed", None)
        report.findings = kept
        for eid in sorted(masked):
            report.add(
                MASKED,
                f"Entry {eid} has masked values in this export: its content cannot be "
                "checked offline (use the integrity export).",
                entry_id=eid,
            )
    return report


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dmobs.integrity.offline",
        description="Verify exported audit entries against signed digests, offline.",
    )
    parser.add_argument("--entries", required=True, type=Path, help="NDJSON export of entries")
    parser.add_argument("--digests", required=True, type=Path, help="digest NDJSON file or dir")
    parser.add_argument(
        "--public-key", required=True, action="append", help="trusted key (repeatable)"
    )
    parser.add_argument("--tenant", help="check only this tenantId's entries")
    parser.add_argument("--from", dest="date_from", help="only digests from this ISO time")
    parser.add_argument("--to", dest="date_to", help="only digests up to this ISO time")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = verify_export(
            args.entries,
            args.digests,
            args.public_key,
            tenant=args.tenant,
            date_from=_time(args.date_from) if args.date_from else None,
            date_to=_time(args.date_to) if args.date_to else None,
        )
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for _kind, label, count, findings in report.by_kind():
            print(f"{label}: {count}")
            for finding in findings:
                print(f"  {finding.message}")
        print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
