"""Request middleware of the screens."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone

from auditui.hosts import AppHostsMiddleware

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
