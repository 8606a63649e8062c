"""System checks: the screens' settings parse (instead of a 500 on first use)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def check_screen_settings(app_configs, **kwargs):
    from auditui.apps_registry import parse_app_hosts
    from auditui.links import parse_resource_urls

    errors = []
    for setting, parse in (
        ("DMOBS_APP_HOSTS", parse_app_hosts),
        ("DMOBS_RESOURCE_URLS", parse_resource_urls),
    ):
        try:
            parse(getattr(settings, setting, "") or "")
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id=f"auditui.E{len(errors) + 1:03d}", obj=setting))
    return errors
