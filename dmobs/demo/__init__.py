"""Demo and load tooling: realistic platform events for the demo and the benchmarks.

Not part of the product: nothing outside ``dmobs.demo`` and the two commands
that load its data (``seed_demo``, ``audit_load``) imports it (an import
contract in pyproject.toml keeps it so).

- ``world``: the demo tenants and people, and the vocabulary the scenarios use.
- ``events``: ``EventFactory``, the scenarios the platform records.
- ``dataset``: the demo data set (casts, scenarios over time, entries).
- ``platform``: demo rows of the platform's own tables (LLM calls, spend caps).
- ``load``: the bulk generator and parallel inserter behind ``audit_load``.
"""
