"""gunicorn settings: tracing is configured in each worker after fork
(the batch span processor's thread does not survive a fork)."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
accesslog = None


def post_fork(server, worker):
    from dmobs.tracing import configure_tracing

    configure_tracing()
