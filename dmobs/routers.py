"""Send the audit model to its own store.

``settings.AUDIT_DB_ALIAS`` is ``"audit"`` when ``AUDIT_DATABASE_URL`` differs
from ``DATABASE_URL`` and ``"default"`` otherwise. On a separate audit database
only ``audit_logs`` is created (``migrate --database audit``); everything else
stays on the default database.
"""

from __future__ import annotations

from django.conf import settings

# audit_facets is derived from audit_logs (by a trigger), so it lives beside it.
AUDIT_MODELS = {("dmobs", "auditlog"), ("dmobs", "auditfacet"), ("dmobs", "auditdigest")}


def _is_audit(app_label: str, model_name: str | None) -> bool:
    return (app_label, (model_name or "").lower()) in AUDIT_MODELS


class AuditRouter:
    def db_for_read(self, model, **hints):
        if _is_audit(model._meta.app_label, model._meta.model_name):
            return settings.AUDIT_DB_ALIAS
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        audit_alias = settings.AUDIT_DB_ALIAS
        if audit_alias == "default":
            return None
        if model_name is None:
            # RunPython/RunSQL operations name their target with a hint.
            target = hints.get("target_model")
            if target is not None:
                return (db == audit_alias) == _is_audit(app_label, target)
            return db != audit_alias
        return (db == audit_alias) == _is_audit(app_label, model_name)
