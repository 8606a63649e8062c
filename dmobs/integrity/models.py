"""``audit_digests``: the signed digests, stored beside ``audit_logs``.

Append-only like the entries: every ORM path that would change or remove a
digest raises ``PermanentEntryError``, the admin only shows them, and on
PostgreSQL triggers reject UPDATE, DELETE and TRUNCATE (migration 0006_i18).
The header text is stored exactly as signed.
"""

from __future__ import annotations

import json

from django.db import models

from dmobs.fields import ObjectIdHexField
from dmobs.ids import new_object_id
from dmobs.integrity.digest import Digest
from dmobs.records import PermanentEntryError


class AuditDigestQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermanentEntryError("QuerySet.update() on audit_digests")

    def delete(self):
        raise PermanentEntryError("QuerySet.delete() on audit_digests")

    def _raw_delete(self, using):
        raise PermanentEntryError("QuerySet._raw_delete() on audit_digests")

    def bulk_update(self, objs, fields, batch_size=None):
        raise PermanentEntryError("QuerySet.bulk_update() on audit_digests")

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        raise PermanentEntryError("QuerySet.update_or_create() on audit_digests")

    def bulk_create(self, objs, *args, **kwargs):
        if kwargs.get("update_conflicts"):
            raise PermanentEntryError("bulk_create(update_conflicts=True) on audit_digests")
        return super().bulk_create(objs, *args, **kwargs)

    async def aupdate(self, **kwargs):
        raise PermanentEntryError("QuerySet.aupdate() on audit_digests")

    async def adelete(self):
        raise PermanentEntryError("QuerySet.adelete() on audit_digests")


class AuditDigest(models.Model):
    id = ObjectIdHexField(primary_key=True, default=new_object_id, editable=False)
    # 1, 2, 3, ... with no gaps: a gap is a removed digest. Unique, so two
    # sealers running at once cannot both write the next one.
    seq = models.PositiveBigIntegerField(unique=True)
    kind = models.CharField(max_length=16)
    sealed_at = models.DateTimeField(db_column="sealedAt")
    # Entries digests: the createdAt range they cover, (after, through].
    after = models.DateTimeField(null=True, blank=True)
    through = models.DateTimeField(null=True, blank=True)
    count = models.PositiveBigIntegerField()
    key_id = models.CharField(max_length=16, db_column="keyId")
    header = models.TextField(help_text="The signed header, as signed (canonical JSON).")
    signature = models.TextField()
    rotation_signature = models.TextField(null=True, blank=True, db_column="rotationSignature")
    groups = models.TextField(help_text="JSON: {tenantId: 'id hash' lines}")

    objects = AuditDigestQuerySet.as_manager()

    class Meta:
        db_table = "audit_digests"
        ordering = ("seq",)

    def __str__(self) -> str:
        return f"digest {self.seq} ({self.kind}, {self.count} entries)"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermanentEntryError("save() of an existing digest")
        kwargs["force_insert"] = True
        kwargs.pop("force_update", None)
        kwargs.pop("update_fields", None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermanentEntryError("delete() of a digest")

    async def adelete(self, *args, **kwargs):
        raise PermanentEntryError("adelete() of a digest")

    def to_digest(self):
        return Digest(
            json.loads(self.header),
            self.signature,
            json.loads(self.groups),
            self.rotation_signature or None,
        )
