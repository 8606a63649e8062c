"""Small display helpers for the audit-log templates. Markup lives in the templates."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.template import engines
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

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
def fragment(template_name: str, **context) -> SafeString:
    """``{% fragment "auditui/_options.jinja" choices=... %}``: a hot fragment rendered
    by the Jinja2 backend (autoescaped), included in a Django template."""
    return render_fragment(template_name, context)


@register.simple_tag(takes_context=True)
def jinja(context, template_name: str) -> SafeString:
    """``{% jinja "auditui/_list.jinja" %}``: a page's content rendered by the Jinja2
    backend with the page's whole context (and its request: ``csrf_input``)."""
    return render_fragment(template_name, context.flatten(), request=context.get("request"))


def render_fragment(template_name: str, context: dict, request=None) -> SafeString:
    """A Jinja2 template's output, as safe markup for a Django template: Jinja2
    escaped every value while rendering it (Django's backend does not mark it).
    With ``request``, the backend adds ``request``, ``csrf_input`` and ``csrf_token``
    to ``context`` (it writes them into the dict it is given)."""
    html = engines["jinja2"].get_template(template_name).render(context, request=request)
    return mark_safe(html)  # noqa: S308 - output of an autoescaped template
