"""Prometheus metrics of the audit write path."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

AUDIT_ACCEPTED = Counter("dmobs_audit_entries_accepted", "Entries accepted by audit_log().")
AUDIT_WRITTEN = Counter("dmobs_audit_entries_written", "Entries written to the audit store.")
AUDIT_SPOOLED = Counter("dmobs_audit_entries_spooled", "Entries written to the disk spool.")
AUDIT_REPLAYED = Counter("dmobs_audit_entries_replayed", "Entries replayed from the spool.")
AUDIT_STORE_ERRORS = Counter("dmobs_audit_store_errors", "Failed writes to the audit store.")
AUDIT_SPOOL_ERRORS = Counter(
    "dmobs_audit_spool_errors", "Failed writes to the spool (entries at risk)."
)
AUDIT_TORN_LINES = Counter(
    "dmobs_audit_spool_torn_lines", "Unreadable spool lines moved to quarantine."
)
AUDIT_QUEUE_DEPTH = Gauge("dmobs_audit_queue_depth", "Entries waiting in the writer queue.")
AUDIT_SPOOL_PENDING = Gauge(
    "dmobs_audit_spool_pending_files", "Spool files waiting to be replayed."
)
