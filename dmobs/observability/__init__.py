"""What the running service tells about itself, configured once at process start.

- ``tracing``: the OpenTelemetry tracer provider, instrumentors, job spans and
  the helpers that read the current trace (``configure_tracing()`` runs in
  manage.py, wsgi/asgi and gunicorn's ``post_fork``).
- ``logger``: the one structlog processor chain (JSON for machines, console on a
  terminal) and the request identity each line carries.
- ``metrics``: the Prometheus metrics this process increments and the
  collectors read at scrape time (spool backlog, readiness).
- ``middleware``: the request context (request id, timing, access line) as the
  outermost middleware.
- ``health``: ``/healthz`` and ``/readyz``.

This package sits under the audit writer (``dmobs.audit``) and over the
vocabulary; it never imports the writer (see the import contracts in
pyproject.toml).
"""
