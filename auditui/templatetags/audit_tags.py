"""Small display helpers for the audit-log templates."""

from __future__ import annotations

from datetime import datetime
from html import escape

from django import template
from django.utils import timezone
from django.utils.safestring import SafeData, mark_safe
from django.utils.text import Truncator

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
    """The actor ``<option>``s (hundreds on the Manage screen): the name, with the
    actor type when it is not a human."""
    return select_options(
        (
            (actor_id, name if kind == "human" else f"{name} ({kind})")
            for actor_id, name, kind in actors
        ),
        selected,
    )


@register.simple_tag
def select_options(choices, selected):
    """``<option>``s for ``choices``: plain values (shown as they are) or
    (value, label) pairs; the one equal to ``selected`` is selected. Built as one
    string, every value through ``html.escape`` (as Django's ``escape`` does): a
    template loop or ``format_html`` per option cost more than the query behind it."""
    parts = []
    for choice in choices:
        value, label = choice if isinstance(choice, tuple) else (choice, choice)
        chosen = " selected" if value == selected else ""
        parts.append(f'<option value="{escape(str(value))}"{chosen}>{escape(str(label))}</option>')
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above


DESCRIPTION_CHARS = 300


def _description(text: str) -> str:
    # Truncator counts characters the way truncatechars does; a text of at most
    # that many code points is never truncated, so most rows skip it.
    return text if len(text) <= DESCRIPTION_CHARS else Truncator(text).chars(DESCRIPTION_CHARS)


@register.simple_tag
def entry_rows(rows, show_tenant, columns):
    """The list's table rows (an entry row and its hidden detail row per entry).

    Built in Python: through the template language the 50 rows of a page took
    most of a list request's time. Every value from an entry or a row goes
    through ``html.escape`` (what Django's ``escape`` does, without its lazy-string
    wrappers); the one exception is the actor icon, our own markup from
    ``views.actor_icon`` (a SafeString rendered from a template).
    """
    parts = []
    for row in rows:
        entry = row.entry
        pk = escape(str(entry.pk))
        url = escape(row.detail_url)
        # Text fields are text or None here (auditui.stored.tidy_entry): an
        # entry written without a name or description still gets a readable row.
        action = escape(entry.action or "")
        actor_name = entry.actor_name or entry.actor_id or "(unknown actor)"
        description = entry.description or "(no description)"
        if show_tenant:
            platform = '<span class="platform">Platform</span>'
            tenant = escape(row.tenant_label) if entry.tenant_id else platform
            tenant_cell = f'\n  <td class="col-tenant">{tenant}</td>'
        else:
            tenant_cell = ""
        icon = row.icon if isinstance(row.icon, SafeData) else escape(row.icon)
        parts.append(
            f'\n<tr class="entry" id="entry-{pk}">\n'
            f'  <td class="col-time"><time datetime="{escape(row.time_iso)}" '
            f'title="{escape(row.time_utc)} UTC">{escape(row.day)}<span class="clock">'
            f'{escape(row.clock)} <span class="offset">{escape(row.offset)}</span></span></time>'
            f"</td>\n"
            f'  <td class="col-actor"><span class="actor">{icon}'
            f'<span class="actor-name">{escape(actor_name)}</span></span></td>\n'
            f'  <td class="col-what"><a class="expand" href="{url}" hx-get="{url}" '
            f'hx-target="#detail-{pk}" hx-swap="innerHTML" hx-push-url="false" '
            f'aria-expanded="false" aria-controls="detail-row-{pk}">'
            f'<span class="chevron" aria-hidden="true"></span>'
            f"{escape(_description(description))}"
            f'</a> <span class="tag tag-{action}">{action}</span></td>'
            f"{tenant_cell}\n</tr>\n"
            f'<tr class="detail-row" id="detail-row-{pk}" hidden><td colspan="{int(columns)}">'
            f'<div class="detail-slot" id="detail-{pk}"></div></td></tr>\n'
        )
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above
