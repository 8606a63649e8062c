"""Host-based routing: each app on its own host, at the platform's exact paths.

``DMOBS_APP_HOSTS`` is ``host=app`` pairs, e.g.
``dashboard.example.com=dashboard,portal.example.com=portal``. A request for a
mapped host gets a URLconf with that app at its own path (``/audit``) plus the
shared pages (sign-in, landing, health); apps without a host of their own stay
under their prefixes. Any other host gets the root URLconf: every app under
its prefix (``/portal/audit``).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from auditui import urls
from auditui.apps_registry import app_for_host, app_hosts
from dmobs import urls as root


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
