"""`make bench-integrity`: sealing and verifying the audit log on PostgreSQL.

1. Creates (or reuses) the database BENCH_DB (default dmobs_bench_integrity_<N>)
   and loads BENCH_ROWS entries (default 1,000,000) with ``audit_load``.
2. Peer, in the same run: reading the same rows with the same SQL and doing
   nothing with them (the floor any sealer or verifier pays to the database).
3. Seals every entry (a fresh chain: the bench database's digests are removed
   first, as its owner with the permanence trigger off) and verifies them.
4. Writes the "Tamper evidence" section of bench/RESULTS.md (one per N).

Environment: BENCH_ROWS, BENCH_DB (must start with dmobs_bench), BENCH_BLOCK
(entries per digest, default 10,000), BENCH_VERIFY_WORKERS (default 2).
Targets (issue 18): sealing >= 50,000 entries/s, verifying >= 200,000 entries/s.
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))


def _label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


DB = os.environ.get("BENCH_DB", f"dmobs_bench_integrity_{_label(ROWS)}")
if not DB.startswith("dmobs_bench"):
    raise SystemExit(f"BENCH_DB must start with dmobs_bench, got {DB!r}")
BLOCK = int(os.environ.get("BENCH_BLOCK", "10000"))
WORKERS = int(os.environ.get("BENCH_VERIFY_WORKERS", "2"))
SEAL_TARGET = 50_000
VERIFY_TARGET = 200_000

# bench.run reads BENCH_ROWS/BENCH_DB at import: it must see ours.
os.environ["BENCH_DB"] = DB
from bench import run  # noqa: E402


def peer_read(source) -> tuple[int, float]:
    """Rows/s of the fast path's own SQL with no canonical form and no hashing."""
    from django.db import connection

    select = source._select()
    started = time.perf_counter()
    rows = 0
    key = None
    while True:
        where, params = "TRUE", []
        if key is not None:
            where, params = '("createdAt", id) > (%s, %s)', list(key)
        with connection.cursor() as cursor:
            cursor.execute(f'{select} WHERE {where} ORDER BY "createdAt", id LIMIT 10000', params)
            chunk = cursor.fetchall()
        rows += len(chunk)
        if len(chunk) < 10000:
            break
        key = (chunk[-1][2], chunk[-1][0])
    return rows, time.perf_counter() - started


def fresh_chain() -> None:
    """Remove the bench database's digests (as its owner): each run seals anew."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_digests DISABLE TRIGGER USER")
        cursor.execute("TRUNCATE audit_digests")
        cursor.execute("ALTER TABLE audit_digests ENABLE TRIGGER USER")


def main() -> None:
    run.say(f"bench/integrity.py with BENCH_ROWS={ROWS}, database {DB}")
    loads_before = os.getloadavg()
    run.ensure_database()
    run.setup_django()
    total, load_note = run.load_rows()

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dmobs.integrity import keys as keymod
    from dmobs.integrity.seal import Sealer
    from dmobs.integrity.service import verify_store
    from dmobs.integrity.sources import PostgresSource

    key = Ed25519PrivateKey.generate()
    os.environ["DMOBS_AUDIT_PUBLIC_KEYS"] = keymod.public_b64(key.public_key())

    run.say("peer: reading every row with the sealer's SQL, no hashing")
    peer_rows, peer_s = peer_read(PostgresSource("default"))
    run.say(f"peer: {peer_rows:,} rows in {peer_s:.1f} s ({peer_rows / peer_s:,.0f} rows/s)")

    fresh_chain()
    run.say(f"sealing {total:,} entries in blocks of {BLOCK:,}")
    started = time.perf_counter()
    result = Sealer(key=key, settle=0, block_size=BLOCK).seal()
    seal_s = time.perf_counter() - started
    sealed = result.entries
    run.say(f"sealed {sealed:,} in {len(result.digests)} digests, {seal_s:.1f} s")

    run.say(f"verifying with {WORKERS} worker process(es)")
    started = time.perf_counter()
    report = verify_store(workers=WORKERS)
    verify_s = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"verification failed: {report.summary()}")
    run.say(f"verified {report.entries:,} in {verify_s:.1f} s")

    started = time.perf_counter()
    single = verify_store(workers=1)
    single_s = time.perf_counter() - started
    assert single.ok and single.entries == report.entries

    loads_after = os.getloadavg()
    seal_rate, verify_rate = sealed / seal_s, report.entries / verify_s
    single_rate = single.entries / single_s
    section = "\n".join(
        [
            f"## Tamper evidence, N = {ROWS:,} entries",
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {run.machine()}",
            f"- Load average (1/5/15 min) at start {loads_before[0]:.2f} / {loads_before[1]:.2f} "
            f"/ {loads_before[2]:.2f}, at end {loads_after[0]:.2f} / {loads_after[1]:.2f} / "
            f"{loads_after[2]:.2f} (2 cores shared with four other engineers' work: absolute "
            "numbers are pessimistic)",
            f"- Command: `BENCH_ROWS={ROWS} make bench-integrity` (database {DB}; blocks of "
            f"{BLOCK:,} entries)",
            f"- Load: {load_note}",
            "",
            "| step | entries | seconds | entries/s | target |",
            "|---|---:|---:|---:|---|",
            f"| peer: read the rows, no hashing | {peer_rows:,} | {peer_s:.1f} | "
            f"{peer_rows / peer_s:,.0f} | – |",
            f"| seal (canonical form, SHA-256, {len(result.digests)} signed digests) | "
            f"{sealed:,} | {seal_s:.1f} | **{seal_rate:,.0f}** | >= {SEAL_TARGET:,}: "
            f"{run._verdict(seal_rate >= SEAL_TARGET, 'below target')} |",
            f"| verify, {WORKERS} worker processes | {report.entries:,} | {verify_s:.1f} | "
            f"**{verify_rate:,.0f}** | >= {VERIFY_TARGET:,}: "
            f"{run._verdict(verify_rate >= VERIFY_TARGET, 'below target')} |",
            f"| verify, 1 process | {single.entries:,} | {single_s:.1f} | {single_rate:,.0f} | – |",
            "",
            f"Sealing runs at {seal_rate / (peer_rows / peer_s):.0%} of the peer's read rate: "
            "the rest of its time is the canonical form and the hashes. Digests: "
            f"{len(result.digests)}; verification checked the chain and every entry.",
        ]
    )
    print()
    print(section)
    out = ROOT / "bench" / "RESULTS.md"
    existing = out.read_text() if out.exists() else ""
    out.write_text(merge(existing, section))
    run.say(f"wrote {out.relative_to(ROOT)}")


def merge(existing: str, section: str) -> str:
    """Replace this N's tamper-evidence section, keep everything else."""
    title = section.splitlines()[0]
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(existing):
        return pattern.sub(section.rstrip() + "\n\n", existing)
    return existing.rstrip() + "\n\n" + section.rstrip() + "\n"


if __name__ == "__main__":
    main()
