"""The "Verify integrity" link of the list screens (issue 18)."""

from __future__ import annotations

from django import template

from auditui.integrity import integrity_url as _integrity_url

register = template.Library()


@register.simple_tag
def integrity_url(scope) -> str:
    """The integrity screen's URL when the viewer may use it, else ""."""
    return _integrity_url(scope) or ""
