"""llm_calls: read from the platform's database when configured, never migrated there."""

from __future__ import annotations

from dmobs.collectors.routers import PlatformRouter
from dmobs.models import AuditLog, LlmCall, Tenant


def test_local_table_by_default(settings):
    settings.LLM_CALLS_DB_ALIAS = "default"
    router = PlatformRouter()
    assert router.db_for_read(LlmCall) == "default"
    assert router.allow_migrate("default", "dmobs", "llmcall") is None  # the others decide
    assert router.db_for_read(AuditLog) is None


def test_the_platforms_database_when_configured(settings):
    settings.LLM_CALLS_DB_ALIAS = "platform"
    router = PlatformRouter()
    assert router.db_for_read(LlmCall) == router.db_for_write(LlmCall) == "platform"
    assert router.db_for_read(Tenant) is None
    # Nothing is created in the platform's database, and no local llm_calls either.
    assert router.allow_migrate("platform", "dmobs", "llmcall") is False
    assert router.allow_migrate("platform", "dmobs", "tenant") is False
    assert router.allow_migrate("platform", "dmobs") is False
    assert router.allow_migrate("default", "dmobs", "llmcall") is False
    assert router.allow_migrate("default", "dmobs", "tenant") is None
