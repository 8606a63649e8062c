"""Free-text search over audit entries, shaped so PostgreSQL can use an index.

The screens' ``q`` matches a substring of the description, the resource name or
the actor name, case-insensitively. On PostgreSQL the three columns are joined
into one expression (with a separator that a search term can never contain:
``q`` rejects control characters) and ``ILIKE`` runs on it, because a trigram
GIN index on exactly that expression (migration 0003) can then answer rare
terms without reading the scope; for frequent terms the planner keeps walking
the (…, created_at, id) index of the sort and stops after one page. Elsewhere
it is the plain OR of three ``icontains``.
"""

from __future__ import annotations

from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

# Must stay byte-for-byte the expression of audit_search_trgm_idx (migration 0003).
SEARCH_EXPRESSION = (
    "(\"description\" || E'\\x1f' || COALESCE(\"resourceName\", '') || E'\\x1f' || \"actorName\")"
)
SEARCH_INDEX = "audit_search_trgm_idx"


def like_pattern(term: str) -> str:
    """``%term%`` with LIKE's wildcards and escape character taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(term: str, *, vendor: str):
    """A filter() argument matching entries whose text contains ``term``."""
    if vendor == "postgresql":
        return RawSQL(
            f"{SEARCH_EXPRESSION} ILIKE %s", [like_pattern(term)], output_field=BooleanField()
        )
    return (
        Q(description__icontains=term)
        | Q(resource_name__icontains=term)
        | Q(actor_name__icontains=term)
    )
