"""Send the audit model to its own store.

``settings.AUDIT_DB_ALIAS`` is ``"audit"`` when ``AUDIT_DATABASE_URL`` differs
from ``DATABASE_URL`` and ``"default"`` otherwise. On a separate audit database
only ``audit_logs`` and ``audit_digests`` are created (``migrate --database
audit``); everything else stays on the default database.

``audit_facets`` (the filter choices' table, kept by a PostgreSQL trigger) lives
beside ``audit_logs`` on a SQL audit database. On MongoDB it has no trigger to
keep it and the screens do not read it (they use DISTINCT there), and its
auto-increment key is a model MongoDB cannot hold (``mongodb.E001``, which
stopped ``migrate --database audit`` with system checks on): there it stays on
the default database, unused, like the rest of the relational models.
"""

from __future__ import annotations

from django.conf import settings

AUDIT_LOG = ("dmobs", "auditlog")
AUDIT_FACET = ("dmobs", "auditfacet")
# The tamper-evidence digests (dmobs.integrity) are kept beside the entries they seal.
AUDIT_DIGEST = ("dmobs", "auditdigest")


def _audit_on_mongodb() -> bool:
    engine = settings.DATABASES.get(settings.AUDIT_DB_ALIAS, {}).get("ENGINE", "")
    return engine.startswith("django_mongodb_backend")


def _is_audit(app_label: str, model_name: str | None) -> bool:
    key = (app_label, (model_name or "").lower())
    if key in (AUDIT_LOG, AUDIT_DIGEST):
        return True
    return key == AUDIT_FACET and not _audit_on_mongodb()


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
