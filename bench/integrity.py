"""`make bench-integrity`: sealing and verifying the audit log on PostgreSQL.

1. Creates (or reuses) the database BENCH_DB (default dmobs_bench_integrity_<N>)
   and loads BENCH_ROWS entries (default 1,000,000) with ``audit_load``.
2. Peer, in the same run: reading the same rows with the same SQL and doing
   nothing with them (the floor any sealer or verifier pays to the database).
3. Seals every entry (a fresh chain: the bench database's digests are removed
   first, as its owner with the permanence trigger off) and verifies them.
   Each step: wall rate, CPU per entry of this process and of the database's
   backends (the wall rate depends on what else the machine runs, these less),
   and this process's peak RSS.
4. Writes the "Tamper evidence" section of bench/RESULTS.md (one per N).

Environment: BENCH_ROWS, BENCH_DB (must start with dmobs_bench), BENCH_BLOCK
(entries per digest, default 10,000), BENCH_VERIFY_WORKERS (default 2).
Targets (issue 18): sealing >= 50,000 entries/s, verifying >= 200,000 entries/s.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import time
from dataclasses import dataclass
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


@dataclass
class Measure:
    entries: int
    wall: float
    cpu: float  # this process, all its threads
    pg_cpu: float  # the bench database's PostgreSQL backends
    peak_rss_mb: float  # this process's peak resident memory so far

    @property
    def rate(self) -> float:
        return self.entries / self.wall

    def us(self, seconds: float) -> float:
        return seconds / self.entries * 1e6 if self.entries else 0.0


def measure(step, count) -> tuple[Measure, object]:
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with run.BackendCpu() as backends:
        started = time.perf_counter()
        result = step()
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime)
        for a, b in zip(after, before, strict=True)
    )
    peak = after[0].ru_maxrss / 1024
    return Measure(count(result), wall, cpu, backends.seconds, peak), result


def peer_read(source) -> int:
    """The fast path's own query for every row, with no state hashes and no
    SHA-256: the floor any sealer or verifier pays to the database."""
    rows = 0
    key = None
    while True:
        where, params = "TRUE", []
        if key is not None:
            where, params = '("createdAt", id) > (%s, %s)', list(key)
        lines = source._lines(source._rows(where, ' ORDER BY "createdAt", id LIMIT 10000'), params)
        rows += len(lines)
        if len(lines) < 10000:
            return rows
        exact, values, _states = lines[-1].split("\t", 2)
        key = (datetime.fromisoformat(exact).replace(tzinfo=UTC), source._leading(values)[1])


def cpu_note(m: Measure) -> str:
    return (
        f"{m.rate:,.0f}/s, CPU µs/entry: ours {m.us(m.cpu):.2f}, PostgreSQL {m.us(m.pg_cpu):.2f}; "
        f"peak RSS {m.peak_rss_mb:,.0f} MB; load {os.getloadavg()[0]:.2f}"
    )


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
    peer, _ = measure(lambda: peer_read(PostgresSource("default")), lambda n: n)
    run.say(f"peer: {peer.entries:,} rows in {peer.wall:.1f} s; {cpu_note(peer)}")

    fresh_chain()
    run.say(f"sealing {total:,} entries in blocks of {BLOCK:,}")
    sealing, result = measure(
        lambda: Sealer(key=key, settle=0, block_size=BLOCK).seal(), lambda r: r.entries
    )
    run.say(
        f"sealed {sealing.entries:,} in {len(result.digests)} digests, {sealing.wall:.1f} s; "
        + cpu_note(sealing)
    )

    run.say(f"verifying on {WORKERS} connection(s)")
    verifying, report = measure(lambda: verify_store(workers=WORKERS), lambda r: r.entries)
    if not report.ok:
        raise SystemExit(f"verification failed: {report.summary()}")
    run.say(
        f"verified {verifying.entries:,} in {verifying.wall:.1f} s "
        f"({report.store_hashed:,} by their blocks' store hashes); {cpu_note(verifying)}"
    )
    single, single_report = measure(lambda: verify_store(workers=1), lambda r: r.entries)
    assert single_report.ok and single.entries == verifying.entries
    run.say(f"verified on 1 connection in {single.wall:.1f} s; {cpu_note(single)}")

    def row(label: str, m: Measure, target: int | None) -> str:
        verdict = "–"
        if target:
            verdict = f">= {target:,}: " + run._verdict(m.rate >= target, "below target")
        return (
            f"| {label} | {m.entries:,} | {m.wall:.1f} | **{m.rate:,.0f}** | "
            f"{m.us(m.cpu):.2f} | {m.us(m.pg_cpu):.2f} | {m.peak_rss_mb:,.0f} | {verdict} |"
        )

    loads_after = os.getloadavg()
    section = "\n".join(
        [
            f"## Tamper evidence, N = {ROWS:,} entries",
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {run.machine()}",
            f"- Load average (1/5/15 min) at start {loads_before[0]:.2f} / {loads_before[1]:.2f} "
            f"/ {loads_before[2]:.2f}, at end {loads_after[0]:.2f} / {loads_after[1]:.2f} / "
            f"{loads_after[2]:.2f} (2 cores: above 2.0, other work shared them and wall-clock "
            "rates are pessimistic; the CPU columns say what the work itself costs)",
            f"- Command: `BENCH_ROWS={ROWS} make bench-integrity` (database {DB}; blocks of "
            f"{BLOCK:,} entries; {len(result.digests)} digests)",
            f"- Load: {load_note}",
            "",
            "| step | entries | wall s | entries/s (wall) | our CPU µs/entry | "
            "PostgreSQL CPU µs/entry | our peak RSS MB | target (wall) |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
            row("peer: the same query for the same rows, no hashing", peer, None),
            row("seal (canonical form, SHA-256, signed digests)", sealing, SEAL_TARGET),
            row(f"verify, {WORKERS} connections (threads)", verifying, VERIFY_TARGET),
            row("verify, 1 connection", single, None),
            "",
            "Our CPU: the sealing/verifying process, all its threads (getrusage). "
            "PostgreSQL's: its backends connected to the bench database (/proc, sampled "
            "every 0.2 s). Sealing: PostgreSQL writes the canonical text around the states; "
            "we look the state hashes up, run one SHA-256 per entry and one per line (the "
            "block's store hash). Verifying: PostgreSQL computes each block's store hash; a "
            "block whose hash differs is checked entry by entry. Peak RSS: the "
            "process's high-water mark after the step (the verifier reads one block's "
            "digest lines at a time).",
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
