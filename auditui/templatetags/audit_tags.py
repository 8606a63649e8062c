"""Small display helpers for the audit-log templates."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html_join

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
    """The actor ``<option>``s: hundreds on the Manage screen, so rendered in one
    ``format_html_join`` rather than a template loop (each value escaped)."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}{}</option>',
        (
            (
                actor_id,
                " selected" if actor_id == selected else "",
                name,
                "" if kind == "human" else f" ({kind})",
            )
            for actor_id, name, kind in actors
        ),
    )
