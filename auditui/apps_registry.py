"""The three apps that show the audit log, and where each one is mounted.

One deployment serves all three. On one host each app lives under a prefix
(``/portal/audit``); on an app's own host (``DMOBS_APP_HOSTS``) it lives at the
exact path the platform uses (``/audit``).
"""

from __future__ import annotations

from dataclasses import dataclass


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
