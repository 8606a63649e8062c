"""The data of dmobs: people, tenants, who may see what, and the audit log.

``AuditLog`` maps onto ``audit_logs`` with the column names the platform's Node
services already write (camelCase), so their entries show up here unchanged.
Entries are permanent: every ORM path that would change or remove one raises
``PermanentEntryError`` (and on PostgreSQL a trigger rejects it in SQL too).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import connections, models
from django.db.models import Q
from django.db.models.sql import Query

from dmobs.fields import ObjectIdHexField, PlatformRefField, tolerant_converter
from dmobs.ids import new_object_id
from dmobs.plainsql import sql_connection
from dmobs.querying import TextSearch, index_friendly
from dmobs.records import PermanentEntryError
from dmobs.vocabulary import ACTOR_TYPES


def _new_ref_id() -> str:
    return new_object_id()


class User(AbstractUser):
    ref_id = models.CharField(
        max_length=64,
        unique=True,
        default=_new_ref_id,
        help_text="The id the platform uses for this person (actorId in audit entries).",
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA time zone used to show times."
    )

    class Meta:
        db_table = "dmobs_user"

    @property
    def is_super_admin(self) -> bool:
        return self.is_superuser

    def sole_tenant_ref(self) -> str | None:
        """The tenant an action of this user belongs to: their only tenant, else none."""
        refs = list(self.memberships.values_list("tenant__ref_id", flat=True)[:2])
        return refs[0] if len(refs) == 1 else None


# The tenant fields the screens show (``created_at`` loads when read): what the
# plain queries below select.
TENANT_LISTED_FIELDS = ("id", "ref_id", "name", "slug", "plan")


class TenantQuerySet(models.QuerySet):
    def every(self) -> list[Tenant]:
        """Every tenant, by name then id, in one plain query: the super admin's list
        reads them on every request (its tenant filter and column), and the ORM's
        building of the query cost more than running it (issue 16)."""
        connection = sql_connection(self.db)
        if connection is None:
            return list(self.order_by("name", "pk"))
        quote = connection.ops.quote_name
        meta = self.model._meta
        columns = ", ".join(quote(meta.get_field(name).column) for name in TENANT_LISTED_FIELDS)
        order = f"{quote(meta.get_field('name').column)}, {quote(meta.pk.column)}"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {quote(meta.db_table)} ORDER BY {order}")
            rows = cursor.fetchall()
        return [self.model.from_db(self.db, TENANT_LISTED_FIELDS, row) for row in rows]


class Tenant(models.Model):
    class Plan(models.TextChoices):
        FREE = "free", "Free"
        STARTER = "starter", "Starter"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    ref_id = models.CharField(
        max_length=64, unique=True, default=_new_ref_id, help_text="tenantId in audit entries."
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet):
    def of_user(self, user: User) -> list[Membership]:
        """The user's memberships, each with its tenant, by tenant name then id.

        One plain query: the Dashboard reads them on every request (list, live-tail
        poll), and building this join and its order through the ORM cost more than
        the query itself (issue 16). Tenant fields other than those of the screens
        (``created_at``) load when read, as with ``only()``.
        """
        db = self.db
        connection = sql_connection(db)
        if connection is None:
            return list(
                self.filter(user=user).select_related("tenant").order_by("tenant__name", "tenant")
            )
        quote = connection.ops.quote_name
        mem, ten = self.model._meta, Tenant._meta
        tenant_fields = TENANT_LISTED_FIELDS
        columns = [
            f"m.{quote(mem.get_field(name).column)}" for name in ("id", "tenant", "role")
        ] + [f"t.{quote(ten.get_field(name).column)}" for name in tenant_fields]
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(mem.db_table)} m "
            f"JOIN {quote(ten.db_table)} t ON t.{quote(ten.pk.column)} = "
            f"m.{quote(mem.get_field('tenant').column)} "
            f"WHERE m.{quote(mem.get_field('user').column)} = %s "
            f"ORDER BY t.{quote(ten.get_field('name').column)}, t.{quote(ten.pk.column)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [user.pk])
            rows = cursor.fetchall()
        memberships = []
        for row in rows:
            membership = self.model.from_db(
                db, ["id", "user_id", "tenant_id", "role"], (row[0], user.pk, row[1], row[2])
            )
            membership.tenant = Tenant.from_db(db, tenant_fields, row[3:])
            membership.user = user
            memberships.append(membership)
        return memberships


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "tenant"), name="membership_user_tenant_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class ReviewerAssignment(models.Model):
    reviewer = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="reviewer_assignments"
    )
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="reviewer_assignments"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("reviewer", "tenant"), name="reviewer_assignment_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} reviews {self.tenant}"


class TolerantConvertersMixin:
    """Reads of audit_logs never fail on one stored value: the time and JSON
    columns' converters hand back what is stored when it cannot be converted
    (``dmobs.fields.tolerant_converter``). Other writers (the Node services, a
    person with a database shell) can store a ``createdAt`` that is text, or a
    state nested deeper than ``json.loads`` goes; one such entry must not turn
    every list that includes it into an error."""

    def get_converters(self, expressions):
        converters = super().get_converters(expressions)
        for index, (convs, expression) in converters.items():
            try:
                field = expression.output_field
            except Exception:  # noqa: BLE001 - an expression without a field type
                continue
            if isinstance(field, models.JSONField | models.DateTimeField):
                json_field = isinstance(field, models.JSONField)
                converters[index] = (
                    [tolerant_converter(c, json_field=json_field) for c in convs],
                    expression,
                )
        return converters


_TOLERANT: dict[type, type] = {}


def _tolerant(compiler):
    cls = type(compiler)
    if cls not in _TOLERANT:
        _TOLERANT[cls] = type(f"Tolerant{cls.__name__}", (TolerantConvertersMixin, cls), {})
    compiler.__class__ = _TOLERANT[cls]
    return compiler


class AuditLogQuery(Query):
    """On MongoDB, compiles reads so the list indexes serve the sort (see dmobs.querying);
    on every store, reads tolerate stored values of the wrong type."""

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        compiler = super().get_compiler(using, connection, elide_empty)
        if compiler.connection.vendor == "mongodb":
            compiler = index_friendly(compiler)
        return _tolerant(compiler)


class AuditLogQuerySet(models.QuerySet):
    """A queryset that can read and insert, never change or remove."""

    def __init__(self, model=None, query=None, using=None, hints=None):
        super().__init__(model, query or AuditLogQuery(model), using, hints)

    def search(self, text: str) -> AuditLogQuerySet:
        """Entries whose description, resource name or actor name contains ``text``.

        A case-insensitive substring match on every backend (``icontains``: a
        ``LIKE``/``ILIKE`` on SQL, a case-insensitive ``$regex`` on MongoDB). With
        ``DMOBS_MONGODB_TEXT_SEARCH=true`` on MongoDB, the text index of
        migration 0003 first narrows the entries to those sharing a whole word
        with ``text`` (``$text``) and the substring test runs on those only; a
        fragment of a word ("approv") then finds nothing. The README's MongoDB
        section says what each way costs.
        """
        text = text.strip()
        if not text:
            return self
        qs = self
        if settings.DMOBS_MONGODB_TEXT_SEARCH and connections[self.db].vendor == "mongodb":
            qs = qs.filter(TextSearch(models.F("description"), text))
        return qs.filter(
            Q(description__icontains=text)
            | Q(resource_name__icontains=text)
            | Q(actor_name__icontains=text)
        )

    def update(self, **kwargs):
        raise PermanentEntryError("QuerySet.update()")

    def delete(self):
        raise PermanentEntryError("QuerySet.delete()")

    def _raw_delete(self, using):
        raise PermanentEntryError("QuerySet._raw_delete()")

    def bulk_update(self, objs, fields, batch_size=None):
        raise PermanentEntryError("QuerySet.bulk_update()")

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        raise PermanentEntryError("QuerySet.update_or_create()")

    def bulk_create(self, objs, *args, **kwargs):
        if kwargs.get("update_conflicts"):
            raise PermanentEntryError("bulk_create(update_conflicts=True)")
        return super().bulk_create(objs, *args, **kwargs)

    # Async twins go through the same checks.
    async def aupdate(self, **kwargs):
        raise PermanentEntryError("QuerySet.aupdate()")

    async def adelete(self):
        raise PermanentEntryError("QuerySet.adelete()")


class AuditLog(models.Model):
    class ActorType(models.TextChoices):
        HUMAN = "human", "Human"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    # A hex string in Python and on SQL, a native ObjectId ``_id`` on MongoDB:
    # see ObjectIdHexField for why.
    id = ObjectIdHexField(primary_key=True, default=new_object_id, editable=False)
    # Text, or on MongoDB an ObjectId written by the Node services (PlatformRefField).
    tenant_id = PlatformRefField(max_length=64, null=True, blank=True, db_column="tenantId")
    actor_type = models.CharField(max_length=10, choices=ActorType.choices, db_column="actorType")
    actor_id = PlatformRefField(max_length=64, db_column="actorId")
    actor_name = models.CharField(max_length=200, db_column="actorName")
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64, db_column="resourceType")
    resource_id = models.CharField(max_length=128, db_column="resourceId")
    resource_name = models.CharField(
        max_length=300, null=True, blank=True, db_column="resourceName"
    )
    description = models.TextField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    trace_id = models.CharField(max_length=32, null=True, blank=True, db_column="traceId")
    created_at = models.DateTimeField(db_column="createdAt")

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "audit_logs"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                "tenant_id",
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="audit_tenant_created_idx",
            ),
            models.Index(
                models.F("created_at").desc(), models.F("id").desc(), name="audit_created_idx"
            ),
            models.Index(
                "tenant_id",
                "actor_id",
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="audit_tenant_actor_idx",
            ),
            models.Index(
                "tenant_id",
                "action",
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="audit_tenant_action_idx",
            ),
            models.Index(
                "tenant_id",
                "resource_type",
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="audit_tenant_restype_idx",
            ),
            models.Index(fields=["trace_id"], name="audit_trace_idx"),
            # A resource's history (auditui.query.resource_history), oldest first.
            models.Index(
                fields=["resource_type", "resource_id", "created_at", "id"],
                name="audit_resource_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_type__in=ACTOR_TYPES), name="audit_actor_type_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermanentEntryError("save() of an existing entry")
        # The id is set before insert, so never let Django try an UPDATE first.
        kwargs["force_insert"] = True
        kwargs.pop("force_update", None)
        kwargs.pop("update_fields", None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermanentEntryError("delete()")

    async def adelete(self, *args, **kwargs):
        raise PermanentEntryError("adelete()")

    @property
    def is_platform(self) -> bool:
        return not self.tenant_id


class AuditFacet(models.Model):
    """One distinct (tenant, actor, action, resource type) combination seen in audit_logs.

    The filter dropdowns of the screens read their choices here instead of running
    DISTINCT over millions of entries. On PostgreSQL a statement-level trigger on
    audit_logs keeps it complete for every insert path (the writer, audit_load's
    COPY, the platform's Node services); it is small (tenants x actors x the
    actions they use) and, like the entries, only grows. Other stores do not
    maintain it: there the screens fall back to DISTINCT (see ``auditui.query``).
    """

    tenant_id = models.CharField(max_length=64, null=True, blank=True, db_column="tenantId")
    actor_type = models.CharField(max_length=10, db_column="actorType")
    actor_id = models.CharField(max_length=64, db_column="actorId")
    # The first name this actor was seen with (DO NOTHING on conflict).
    actor_name = models.CharField(max_length=200, db_column="actorName")
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64, db_column="resourceType")

    class Meta:
        db_table = "audit_facets"

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.actor_id} {self.action} {self.resource_type}"


class LlmCall(models.Model):
    """One language-model call of the platform's agents (the platform's ``llm_calls``).

    The platform's services write these, stamped with the ``traceId`` of the
    agent run; the column names are theirs (camelCase, like ``audit_logs``).
    dmobs only reads them, for the LLM Cost and Tenant Health metrics
    (``dmobs.collectors.llm``); ``seed_demo`` writes demo ones when the table is
    local. With ``LLM_CALLS_DATABASE_URL`` set they are read from the platform's
    database (the ``platform`` alias) and never migrated or written there.
    """

    id = ObjectIdHexField(primary_key=True, default=new_object_id, editable=False)
    tenant_id = models.CharField(max_length=64, null=True, blank=True, db_column="tenantId")
    agent_role = models.CharField(max_length=64, db_column="agentRole")
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=100)
    input_tokens = models.PositiveIntegerField(db_column="inputTokens")
    output_tokens = models.PositiveIntegerField(db_column="outputTokens")
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, db_column="costUsd")
    trace_id = models.CharField(max_length=32, null=True, blank=True, db_column="traceId")
    created_at = models.DateTimeField(db_column="createdAt")

    class Meta:
        db_table = "llm_calls"
        indexes = [
            models.Index(models.F("created_at").desc(), name="llm_calls_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.provider}/{self.model} {self.cost_usd}"


class SpendCap(models.Model):
    """A monthly LLM spend cap in US dollars, for a plan or for one tenant.

    A tenant's own cap wins over its plan's. Tenant Health and the
    ``TenantApproachingSpendCap`` alert compare month-to-date spend with it.
    """

    plan = models.CharField(
        max_length=20, choices=Tenant.Plan.choices, null=True, blank=True, unique=True
    )
    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="spend_cap"
    )
    monthly_usd = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        db_table = "dmobs_spend_cap"
        constraints = [
            models.CheckConstraint(
                condition=(Q(plan__isnull=False) & Q(tenant__isnull=True))
                | (Q(plan__isnull=True) & Q(tenant__isnull=False)),
                name="spend_cap_plan_xor_tenant",
            ),
            models.CheckConstraint(condition=Q(monthly_usd__gt=0), name="spend_cap_positive"),
        ]

    def __str__(self) -> str:
        who = f"plan {self.plan}" if self.plan else f"tenant {self.tenant_id}"
        return f"{who}: {self.monthly_usd} USD/month"


# The digests of the tamper evidence (issue 18) live in their own package.
from dmobs.integrity.models import AuditDigest  # noqa: E402,F401
