"""Small display helpers for the audit-log templates."""

from __future__ import annotations

from datetime import datetime
from html import escape

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def utc_offset(value: datetime | None) -> str:
    """``UTC+01:00`` for the viewer's time zone at that moment (``UTC`` when zero)."""
    if not value:
        return ""
    offset = timezone.localtime(value).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


@register.simple_tag
def actor_options(actors, selected: str):
    """The actor ``<option>``s: hundreds on the Manage screen, so built as one
    string (every value through ``html.escape``, as Django's ``escape`` does)
    rather than a template loop or ``format_html`` per option."""
    parts = []
    for actor_id, name, kind in actors:
        chosen = " selected" if actor_id == selected else ""
        suffix = "" if kind == "human" else f" ({escape(kind)})"
        parts.append(f'<option value="{escape(actor_id)}"{chosen}>{escape(name)}{suffix}</option>')
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above
