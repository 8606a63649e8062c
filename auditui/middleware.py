"""Request middleware of the screens."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from auditui import urls
from auditui.apps_registry import app_for_host, app_hosts
from dmobs import urls as root

__all__ = ["AppHostsMiddleware", "ViewerTimeZoneMiddleware"]


class ViewerTimeZoneMiddleware:
    """Shows times in the signed-in user's time zone (``User.time_zone``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        name = getattr(user, "time_zone", None) if user and user.is_authenticated else None
        tz = None
        if name:
            try:
                tz = zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                tz = None
        if tz is None:
            timezone.deactivate()
            return self.get_response(request)
        with timezone.override(tz):
            return self.get_response(request)


class HostURLConf:
    """A URLconf object for one app host (hashable, so Django caches its resolver)."""

    def __init__(self, app: str, hosted: frozenset[str]):
        self.app = app
        # The project's own pages (health, admin) stay; the screens are rebuilt for this host.
        others = [p for p in root.urlpatterns if getattr(p, "urlconf_name", None) is not urls]
        self.urlpatterns = [
            *urls.build_urlpatterns(own_app=app, hosted_elsewhere=hosted),
            *others,
        ]


@lru_cache(maxsize=16)
def urlconf_for(app: str, hosted: frozenset[str]) -> HostURLConf:
    return HostURLConf(app, hosted)


class AppHostsMiddleware:
    """Picks the URLconf by host when ``DMOBS_APP_HOSTS`` maps the request's host."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.DMOBS_APP_HOSTS:
            app = app_for_host(request.get_host())
            if app is not None:
                request.urlconf = urlconf_for(app, frozenset(app_hosts().values()))
                request.audit_host_app = app
        return self.get_response(request)
