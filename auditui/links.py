"""Links out of an entry: to the resource it names, to its trace and to its logs.

Entry data is never trusted to shape a link: a trace id must be 32 hex digits
(not all zero) before it goes into a Grafana URL, and a resource id is
percent-quoted into a template the operator configured, so it can neither
change the scheme (``javascript:``) nor the host.

``DMOBS_RESOURCE_URLS`` maps ``app:resource_type`` to a URL template with a
``{resource_id}`` placeholder, as JSON::

    {"dashboard": {"strategy": "/strategies/{resource_id}"},
     "*": {"user": "https://manage.example.com/users/{resource_id}"}}

or as comma-separated pairs::

    dashboard:strategy=/strategies/{resource_id},*:user=/users/{resource_id}

``*`` as the app applies to every app. A template is a path on the app's own
host (starting with one ``/``) or an absolute ``http(s)`` URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from auditui.apps_registry import APPS
from dmobs.vocabulary import is_valid_trace_id

PLACEHOLDER = "{resource_id}"
# LogQL needs one non-empty label matcher; the line filter does the real work.
LOKI_QUERY = '{{service=~".+"}} |= "{trace_id}"'
TRACE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class TraceLinks:
    trace_url: str
    logs_url: str


def _checked_template(key: str, template: str) -> str:
    template = template.strip()
    if template.count(PLACEHOLDER) != 1 or template.replace(PLACEHOLDER, "").count("{") + (
        template.replace(PLACEHOLDER, "").count("}")
    ):
        raise ImproperlyConfigured(
            f"DMOBS_RESOURCE_URLS[{key}]: the template must contain {PLACEHOLDER} exactly once "
            f"and no other braces, got {template!r}."
        )
    if "\\" in template or any(ord(c) < 32 or ord(c) == 127 for c in template):
        # Browsers read "\" as "/" ("/\evil.example" is another host) and drop tabs and
        # newlines, so such a template would not mean what the checks below see.
        raise ImproperlyConfigured(
            f"DMOBS_RESOURCE_URLS[{key}]: backslashes and control characters are not "
            f"allowed in a template, got {template!r}."
        )
    parts = urlsplit(template.replace(PLACEHOLDER, "x"))
    if template.startswith("/") and not template.startswith("//"):
        if parts.scheme or parts.netloc:
            raise ImproperlyConfigured(f"DMOBS_RESOURCE_URLS[{key}]: bad path {template!r}.")
    elif parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(
            f"DMOBS_RESOURCE_URLS[{key}]: a template is a path starting with '/' or an "
            f"http(s) URL, got {template!r}."
        )
    elif PLACEHOLDER in template.split("//", 1)[1].split("/", 1)[0]:
        raise ImproperlyConfigured(
            f"DMOBS_RESOURCE_URLS[{key}]: {PLACEHOLDER} must not be part of the host."
        )
    return template


@lru_cache(maxsize=8)
def parse_resource_urls(raw: str) -> dict[tuple[str, str], str]:
    """``{(app or "*", resource_type): template}``; ImproperlyConfigured on a bad value."""
    raw = (raw or "").strip()
    pairs: list[tuple[str, str, str]] = []
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"DMOBS_RESOURCE_URLS is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ImproperlyConfigured(
                'DMOBS_RESOURCE_URLS as JSON is {"app": {"resource_type": "template"}}.'
            )
        for app, types in data.items():
            for resource_type, template in types.items():
                if not isinstance(template, str):
                    raise ImproperlyConfigured(
                        f"DMOBS_RESOURCE_URLS[{app}:{resource_type}] must be a string."
                    )
                pairs.append((app, resource_type, template))
    elif raw:
        for item in raw.split(","):
            if not item.strip():
                continue
            key, sep, template = item.partition("=")
            app, colon, resource_type = key.strip().partition(":")
            if not sep or not colon:
                raise ImproperlyConfigured(
                    "DMOBS_RESOURCE_URLS pairs look like app:resource_type=/path/{resource_id}, "
                    f"got {item.strip()!r}."
                )
            pairs.append((app.strip(), resource_type.strip(), template))
    result: dict[tuple[str, str], str] = {}
    for app, resource_type, template in pairs:
        if app != "*" and app not in APPS:
            raise ImproperlyConfigured(
                f"DMOBS_RESOURCE_URLS names the app {app!r}; expected *, {', '.join(APPS)}."
            )
        key = f"{app}:{resource_type}"
        result[(app, resource_type)] = _checked_template(key, template)
    return result


def resource_url(*, app: str, resource_type: str, resource_id: str | None) -> str | None:
    """The URL of the entry's resource in this app, or None when there is none."""
    if not resource_id or resource_id in (".", ".."):
        return None
    templates = parse_resource_urls(settings.DMOBS_RESOURCE_URLS)
    template = templates.get((app, resource_type)) or templates.get(("*", resource_type))
    if template is None:
        return None
    url = template.replace(PLACEHOLDER, quote(str(resource_id), safe=""))
    # Belt and braces: the result keeps the template's scheme and host.
    before, after = urlsplit(template.replace(PLACEHOLDER, "x")), urlsplit(url)
    if (before.scheme, before.netloc) != (after.scheme, after.netloc):
        return None
    return url


def _grafana_explore(panes: dict) -> str:
    base = settings.DMOBS_GRAFANA_URL.rstrip("/")
    query = urlencode(
        {"schemaVersion": "1", "orgId": "1", "panes": json.dumps(panes, separators=(",", ":"))}
    )
    return f"{base}/explore?{query}"


def trace_links(trace_id: str | None, *, at: datetime | None = None) -> TraceLinks | None:
    """Grafana Explore links for a valid trace id (Tempo trace, Loki logs), else None."""
    if not is_valid_trace_id(trace_id):
        return None
    base = urlsplit(settings.DMOBS_GRAFANA_URL or "")
    if base.scheme not in ("http", "https") or not base.netloc:
        return None
    if at is not None:
        time_range = {
            "from": str(int((at - TRACE_WINDOW).timestamp() * 1000)),
            "to": str(int((at + TRACE_WINDOW).timestamp() * 1000)),
        }
    else:
        time_range = {"from": "now-24h", "to": "now"}
    tempo_uid = settings.DMOBS_TEMPO_DATASOURCE_UID
    loki_uid = settings.DMOBS_LOKI_DATASOURCE_UID
    trace_pane = {
        "trace": {
            "datasource": tempo_uid,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "tempo", "uid": tempo_uid},
                    "queryType": "traceql",
                    "query": trace_id,
                }
            ],
            "range": time_range,
        }
    }
    logs_pane = {
        "logs": {
            "datasource": loki_uid,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "loki", "uid": loki_uid},
                    "expr": LOKI_QUERY.format(trace_id=trace_id),
                    "queryType": "range",
                }
            ],
            "range": time_range,
        }
    }
    return TraceLinks(trace_url=_grafana_explore(trace_pane), logs_url=_grafana_explore(logs_pane))
