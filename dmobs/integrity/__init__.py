"""Tamper evidence for ``audit_logs``: signed, chained digests of the entries.

Modules, lowest first (none imports a higher one, none imports ``auditui``):

* ``canonical``: the canonical form of an entry and its SHA-256 (docs/INTEGRITY.md).
* ``digest``: digest documents, group roots, the Merkle tree over tenants,
  per-tenant proofs, signing and checking signatures.
* ``keys``: the Ed25519 signing key and the trusted public keys (from the
  environment or files, never the database).
* ``verify``: the verifier. It needs digests and a source of hashed entries,
  so the same code checks the database and an offline export.
* ``sources``: hashed entries read from the audit store (SQL, PostgreSQL fast
  path, MongoDB) for the sealer and the verifier.
* ``seal``: the sealer.
* ``offline``: ``python -m dmobs.integrity.offline``, the verifier for an
  export, the digest files and a public key (no database, no Django).
"""
