"""URLs of the screens. ``build_urlpatterns()`` is shared by the one-host layout
(every app under its prefix, this module's ``urlpatterns``) and the per-host
URLconfs of ``auditui.middleware``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from auditui import integrity, views
from auditui.apps_registry import APPS


def app_urlpatterns(app: str, base: str) -> list:
    screens = views.SCREENS[app]
    patterns = [
        path(base, screens["list"].as_view(), name="list"),
        path(f"{base}/export", screens["export"].as_view(), name="export"),
        path(f"{base}/history", screens["history"].as_view(), name="history"),
        path(f"{base}/<str:entry_id>/", screens["detail"].as_view(), name="detail"),
    ]
    # URLs of the scope itself (the Dashboard's tenant switch).
    patterns += screens["list"].extra_urlpatterns(base)
    patterns += integrity.urlpatterns_for(app, base)  # issue 18: "Verify integrity"
    return patterns


def build_urlpatterns(
    *, own_app: str | None = None, hosted_elsewhere: frozenset[str] = frozenset()
) -> list:
    """Shared pages plus each app's screen.

    ``own_app`` is the app of the host being served: it gets its exact path
    (``/audit``). Apps with a host of their own are left to that host; the rest
    stay under their prefixes (``/portal/audit``).
    """
    patterns = [
        path("", views.home, name="home"),
        path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
        path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    ]
    for name, app in APPS.items():
        if name == own_app:
            base = app.path
        elif own_app is not None and name in hosted_elsewhere:
            continue
        else:
            base = app.shared_path
        patterns.append(path("", include((app_urlpatterns(name, base), name))))
    return patterns


urlpatterns = build_urlpatterns()
