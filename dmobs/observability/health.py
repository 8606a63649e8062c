"""Liveness and readiness.

- ``/healthz`` (liveness): the process answers. It checks nothing else, on
  purpose: a restart does not bring a database back, so an orchestrator that
  restarts on a failed liveness probe must not see the database in it.
- ``/readyz`` (readiness): the default database and the audit store answer a
  trivial query. 200 with every check ``ok``, else 503 naming the failed check
  and the error class (never the message: it may hold a host or user name).
  The compose healthcheck uses it; ``dmobs_ready`` (computed when Prometheus
  scrapes) feeds the ServiceNotReady alert.

Neither probe is traced (no spans of its own, no query spans) nor written to
the access log: they run every few seconds.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from opentelemetry.instrumentation.utils import suppress_instrumentation


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    error: str | None = None


def _ping(alias: str) -> None:
    connection = connections[alias]
    if connection.vendor == "mongodb":
        connection.ensure_connection()
        connection.connection.admin.command("ping")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check(name: str, alias: str) -> Check:
    try:
        _ping(alias)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        try:
            # A broken persistent connection is dropped; the next probe reconnects.
            connections[alias].close()
        except Exception:  # noqa: BLE001
            pass
        return Check(name, False, type(exc).__name__)
    return Check(name, True)


# A database that drops packets (rather than refusing) would hold a check until
# the driver's connect timeout; a probe or a scrape must answer before its own.
READINESS_TIMEOUT = 3.0


def _run_checks() -> list[Check]:
    with suppress_instrumentation():
        checks = [_check("default", "default")]
        audit_alias = settings.AUDIT_DB_ALIAS
        if audit_alias == "default":
            checks.append(Check("audit", checks[0].ok, checks[0].error))
        else:
            checks.append(_check("audit", audit_alias))
    return checks


def readiness(timeout: float | None = READINESS_TIMEOUT) -> list[Check]:
    """Run the readiness checks: ``default`` database, then ``audit`` store.

    With a ``timeout`` they run on a thread of their own (with its own
    connections, closed afterwards), and a check still running when it expires
    fails as ``Timeout``: Prometheus's scrape and the orchestrator's probe get
    an answer either way.
    """
    if timeout is None:
        return _run_checks()
    result: list[list[Check]] = []

    def run() -> None:
        try:
            result.append(_run_checks())
        finally:
            connections.close_all()  # this thread's connections

    thread = threading.Thread(target=run, name="dmobs-readiness", daemon=True)
    thread.start()
    thread.join(timeout)
    if result:
        return result[0]
    return [Check("default", False, "Timeout"), Check("audit", False, "Timeout")]


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    checks = readiness()
    ready = all(c.ok for c in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: "ok" if c.ok else f"failed: {c.error}" for c in checks},
    }
    return HttpResponse(
        json.dumps(body) + "\n", status=200 if ready else 503, content_type="application/json"
    )
