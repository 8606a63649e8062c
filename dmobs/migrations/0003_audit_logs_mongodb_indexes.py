"""On MongoDB, create the list indexes of audit_logs and the text index for ``q``.

AuditLog's Meta.indexes use expressions (``F("created_at").desc()``), which
django-mongodb-backend skips: it only builds indexes from plain field names. The
same access paths are created here with PyMongo, on the stored (camelCase) names
and on ``_id``, which is where the primary key lives on MongoDB. Every list index
ends in ``createdAt: -1, _id: -1``, the keyset order of the screens, so a page is
an index range scan whatever equality filters come first.

The text index backs the free-text filter ``q`` (a ``$text`` query). MongoDB
allows one text index per collection; it costs a write of one index key per
distinct word of each entry at insert time and its size grows with the text.
``default_language: "none"`` indexes words as they are (no stemming, no stop
words), which is closer to the substring search of the SQL databases.

On SQLite and PostgreSQL this migration does nothing: Meta.indexes already made
these indexes there.
"""

from django.db import migrations
from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel

TEXT_INDEX = "audit_text_idx"
# (name, equality prefix fields); each index continues with createdAt desc, _id desc.
LIST_INDEXES = [
    ("audit_created_idx", ()),
    ("audit_tenant_created_idx", ("tenant_id",)),
    ("audit_tenant_actor_idx", ("tenant_id", "actor_id")),
    ("audit_tenant_action_idx", ("tenant_id", "action")),
    ("audit_tenant_restype_idx", ("tenant_id", "resource_type")),
]
TEXT_FIELDS = ("description", "actor_name", "resource_name", "resource_id")


def _index_models(model) -> list[IndexModel]:
    def column(name: str) -> str:
        return model._meta.get_field(name).column

    created, pk = column("created_at"), model._meta.pk.column
    indexes = [
        IndexModel(
            [*((column(f), ASCENDING) for f in prefix), (created, DESCENDING), (pk, DESCENDING)],
            name=name,
        )
        for name, prefix in LIST_INDEXES
    ]
    indexes.append(
        IndexModel(
            [(column(f), TEXT) for f in TEXT_FIELDS], name=TEXT_INDEX, default_language="none"
        )
    )
    return indexes


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "mongodb":
        return
    model = apps.get_model("dmobs", "AuditLog")
    collection = schema_editor.connection.get_collection(model._meta.db_table)
    collection.create_indexes(_index_models(model))


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "mongodb":
        return
    model = apps.get_model("dmobs", "AuditLog")
    collection = schema_editor.connection.get_collection(model._meta.db_table)
    for name, _ in LIST_INDEXES:
        collection.drop_index(name)
    collection.drop_index(TEXT_INDEX)


class Migration(migrations.Migration):
    dependencies = [("dmobs", "0002_audit_logs_immutable")]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, hints={"target_model": "auditlog"}),
    ]
