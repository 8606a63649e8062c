"""Hostile entries: what another writer of ``audit_logs`` (the Node services, or
an attacker who controls a name, a description or a JSON state) can put there.

``audit_log()`` validates action and resource type, but the Node services
write the same table without our checks, so these rows are inserted with
``bulk_create``. Each payload sets ``window.__xss`` when it runs, so a browser
test can tell "escaped" from "blocked by the Content-Security-Policy".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser

from dmobs.ids import new_object_id
from dmobs.models import AuditLog, Tenant

SCRIPT = "<script>window.__xss=1;alert(1)</script>"
IMG = '<img src=x onerror="window.__xss=2;alert(2)">'
SVG = '"><svg onload="window.__xss=3;alert(3)">'
JS_URL = "javascript:window.__xss=4;alert(4)"
BROKEN = '</td></tr></tbody></table><b id="xss-b">broken</b>'
ATTR = "' onmouseover='window.__xss=5' x='"
RTL = "\u202eexe.tnemyap\u202c"  # shows as "payment.exe"
ZERO_WIDTH = "ad\u200bmin\u200c\u200d\ufeff"
LONG = "A" * 100_000
LONG_WORDS = ("lorem ipsum " * 9_000)[:100_000]
PAYLOADS = (SCRIPT, IMG, SVG, JS_URL, BROKEN, ATTR)
# Markup that must never reach a page unescaped.
MARKUP = (SCRIPT, IMG, SVG, BROKEN, "<svg onload", "<img src=x", '<b id="xss-b"')
RESOURCE_URLS = (
    "*:strategy=/strategies/{resource_id},*:user=https://manage.example.test/users/{resource_id}"
)


@dataclass
class Hostile:
    entries: list[AuditLog]

    def named(self, name: str) -> AuditLog:
        return next(e for e in self.entries if e.resource_name == name)


def hostile_entries(tenant: Tenant, *, now: datetime) -> list[AuditLog]:
    """One entry per kind of payload, in ``tenant``, newest first, just before ``now``."""
    ref = tenant.ref_id

    def entry(i: int, name: str, **fields) -> AuditLog:
        created = now - timedelta(seconds=i + 1)
        base = dict(
            id=new_object_id(created.timestamp()),
            tenant_id=ref,
            actor_type="human",
            actor_id=f"u-hostile-{i}",
            actor_name=f"Hostile {name}",
            action="updated",
            resource_type="strategy",
            resource_id=f"st_{i}",
            resource_name=name,
            description=f"hostile {name}",
            before=None,
            after=None,
            trace_id=f"{i + 1:032x}",
            created_at=created,
        )
        base.update(fields)
        return AuditLog(**base)

    return [
        entry(
            0,
            "script",
            actor_name=SCRIPT,
            action='"><svg onload="window.__xss=3;alert(3)">',
            resource_type="<b>type</b>",
            description=f"{SCRIPT} {IMG} {SVG}",
            before={SCRIPT: IMG, "nested": {SVG: [BROKEN, JS_URL]}, "same": SCRIPT},
            after={SCRIPT: SVG, IMG: BROKEN, "nested": {SVG: [JS_URL]}, "same": SCRIPT},
        ),
        entry(
            1,
            "broken",
            actor_name=BROKEN,
            description=BROKEN,
            before={BROKEN: BROKEN},
            after={BROKEN: IMG, "new": BROKEN},
        ),
        entry(
            2,
            "long",
            actor_type="agent",
            actor_name="L" * 200,
            description=LONG,
            before={"body": LONG_WORDS, "k" * 300: 1},
            after={"body": LONG, "k" * 300: 2},
        ),
        entry(
            3,
            "rtl",
            actor_name=f"{RTL} {ZERO_WIDTH}",
            # The last override is never closed (no U+202C).
            description=f"Approved {RTL} for {ZERO_WIDTH} \u202eunclosed",
            before={RTL: ZERO_WIDTH},
            after={RTL: RTL, ZERO_WIDTH: "\u202e" * 20},
        ),
        entry(4, "tenant", tenant_id='<img src=x onerror="window.__xss=6">', actor_type="system"),
        entry(5, "trace", trace_id="javascript:alert(1)", actor_type="agent"),
        entry(6, "attr", actor_id=ATTR, resource_id=ATTR, description=ATTR, after={"k": ATTR}),
        entry(7, "link", resource_id=JS_URL, description=f"link {JS_URL}"),
    ]


def insert_hostile(tenant: Tenant, *, now: datetime) -> Hostile:
    entries = hostile_entries(tenant, now=now)
    AuditLog.objects.bulk_create(entries)
    return Hostile(entries)


class Page(HTMLParser):
    """Elements, attributes and text of an HTML page, as a browser would tokenize them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.ends: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        self.ends.append(tag)

    def handle_endtag(self, tag):
        self.ends.append(tag)

    def handle_data(self, data):
        self.text.append(data)

    def all_text(self) -> str:
        return "".join(self.text)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(
            1
            for name, found in self.starts
            if name == tag and all(found.get(k) == v for k, v in attrs.items())
        )


def url_attributes(page: Page) -> list[str]:
    return [
        value
        for _tag, attrs in page.starts
        for name, value in attrs.items()
        if name in ("href", "src", "action", "hx-get", "hx-post", "formaction") and value
    ]


def is_script_url(url: str) -> bool:
    """As a browser reads it: leading C0/space stripped, tab and newlines removed."""
    cleaned = "".join(c for c in url.lstrip("\x00\x01\x02\x03 \t\n\r\f") if c not in "\t\n\r")
    return cleaned.lower().startswith(("javascript:", "vbscript:", "data:"))


def assert_inert(html: str, *, fragment: bool = False) -> Page:
    """No element, attribute or URL in ``html`` came from a payload."""
    for markup in MARKUP:
        assert markup not in html, markup
    page = Page(html)
    tags = {tag for tag, _ in page.starts}
    assert not tags & {"img", "iframe", "b", "object", "embed"}, tags
    for tag, attrs in page.starts:
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, (tag, attrs)
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        assert attrs.get("id") != "xss-b"
    for url in url_attributes(page):
        assert not is_script_url(url), url
    # Broken markup in the data closed nothing: every table, row and cell the
    # page opens, it closes itself.
    for tag in ("table", "tbody", "tr", "td"):
        assert page.count(tag) == page.ends.count(tag), (tag, page.count(tag), page.ends.count(tag))
    if not fragment:
        assert page.count("html") == 1
    return page
