"""Shared fixtures: a real OpenTelemetry SDK with an in-memory exporter, a
fresh audit writer per test, and on PostgreSQL the test database's TRUNCATE
trigger disabled so transactional tests can clean up (the permanence tests
turn it back on inside their own transaction)."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dmobs.audit import writer as writer_module
from dmobs.observability.tracing import configure_tracing

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)
# Instrument Django and the drivers against that provider, so requests in
# tests produce real server spans (configure_tracing keeps an SDK provider).
configure_tracing()


@pytest.fixture
def span_exporter():
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture(autouse=True)
def _clear_spans():
    """Instrumented requests and queries record spans in every test: drop them."""
    yield
    _EXPORTER.clear()


@pytest.fixture
def tracer():
    return trace.get_tracer("tests")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_no_truncate")
                cursor.execute(
                    "ALTER TABLE audit_digests DISABLE TRIGGER audit_digests_no_truncate"
                )


@pytest.fixture(autouse=True)
def _fresh_writer(settings, tmp_path):
    """Each test gets its own writer and spool directory; closed afterwards."""
    settings.AUDIT_SPOOL_DIR = tmp_path / "spool"
    old = writer_module.set_writer(None)
    yield
    current = writer_module.set_writer(old)
    if current is not None:
        current.close(timeout=5)


class PgConnections:
    """Counts the connections to the test database (PostgreSQL), for tests that
    helper threads close theirs."""

    def __call__(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    def settle_at(self, expected: int, timeout: float = 5.0) -> int:
        """The count once it is ``expected`` or ``timeout`` has passed: a closed
        connection's backend leaves pg_stat_activity a moment after the client."""
        deadline = time.monotonic() + timeout
        while (now := self()) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return now


@pytest.fixture
def pg_connections() -> PgConnections:
    return PgConnections()
