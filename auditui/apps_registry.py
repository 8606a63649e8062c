"""The three apps that show the audit log, and where each one is mounted.

One deployment serves all three; ``DMOBS_APP_HOSTS`` maps hosts to apps
(read here; ``auditui.middleware`` routes requests by it). On one host each app lives under a prefix
(``/portal/audit``); on an app's own host (``DMOBS_APP_HOSTS``) it lives at the
exact path the platform uses (``/audit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class AuditApp:
    name: str
    label: str
    audience: str
    # Path of the list on the app's own host, and the prefix on a shared host.
    path: str
    prefix: str

    @property
    def shared_path(self) -> str:
        return f"{self.prefix}/{self.path}"


APPS: dict[str, AuditApp] = {
    app.name: app
    for app in (
        AuditApp(
            name="dashboard",
            label="Dashboard",
            audience="Every change in your tenant's account",
            path="settings/audit-log",
            prefix="dashboard",
        ),
        AuditApp(
            name="portal",
            label="DM Portal",
            audience="Human and agent actions in the tenants you review",
            path="audit",
            prefix="portal",
        ),
        AuditApp(
            name="manage",
            label="Manage",
            audience="Every tenant and the platform itself",
            path="audit",
            prefix="manage",
        ),
    )
}


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
