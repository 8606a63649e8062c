"""Host-based routing: each app on its own host, at the platform's exact paths.

``DMOBS_APP_HOSTS`` is ``host=app`` pairs, e.g.
``dashboard.example.com=dashboard,portal.example.com=portal``. A request for a
mapped host gets a URLconf with that app at its own path (``/audit``) plus the
shared pages (sign-in, landing, health); apps without a host of their own stay
under their prefixes. Any other host gets the root URLconf: every app under
its prefix (``/portal/audit``). The URLconfs are built and picked by
``auditui.middleware.AppHostsMiddleware``.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from auditui.apps_registry import APPS


@lru_cache(maxsize=8)
def parse_app_hosts(raw: str) -> dict[str, str]:
    """``{host: app}`` from ``DMOBS_APP_HOSTS``; hosts are lower-cased, ports kept."""
    hosts: dict[str, str] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        host, sep, app = item.partition("=")
        host, app = host.strip().lower(), app.strip()
        if not sep or not host or app not in APPS:
            raise ImproperlyConfigured(
                f"DMOBS_APP_HOSTS pairs look like dashboard.example.com=dashboard (apps: "
                f"{', '.join(APPS)}), got {item.strip()!r}."
            )
        if app in hosts.values():
            raise ImproperlyConfigured(f"DMOBS_APP_HOSTS gives the app {app!r} two hosts.")
        hosts[host] = app
    return hosts


def app_hosts() -> dict[str, str]:
    return parse_app_hosts(settings.DMOBS_APP_HOSTS)


def host_of_app(app: str) -> str | None:
    return next((host for host, name in app_hosts().items() if name == app), None)


def app_for_host(host: str) -> str | None:
    hosts = app_hosts()
    host = host.lower()
    return hosts.get(host) or hosts.get(host.rsplit(":", 1)[0])
