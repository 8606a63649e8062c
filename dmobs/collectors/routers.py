"""Send the platform's ``llm_calls`` to the platform's database when it is configured.

With ``LLM_CALLS_DATABASE_URL`` set, ``LlmCall`` reads go to the ``platform``
alias: that table is the platform's own, so it is never migrated or written
from here. Without it, ``llm_calls`` is an ordinary local table (the demo
writes it) on the default database.
"""

from __future__ import annotations

from django.conf import settings

PLATFORM_MODELS = {("dmobs", "llmcall")}


def _is_platform(app_label: str, model_name: str | None) -> bool:
    return (app_label, (model_name or "").lower()) in PLATFORM_MODELS


class PlatformRouter:
    def db_for_read(self, model, **hints):
        if _is_platform(model._meta.app_label, model._meta.model_name):
            return settings.LLM_CALLS_DB_ALIAS
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if settings.LLM_CALLS_DB_ALIAS == "default":
            return None
        if db == "platform":
            return False  # the platform's own database: read only
        if _is_platform(app_label, model_name):
            return False  # the table lives there, not here
        return None
