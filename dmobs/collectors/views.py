"""``/metrics/platform``: the collectors of ``dmobs.collectors``, for their own scrape job."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dmobs.collectors.platform import render_platform
from dmobs.views import metrics_allowed


@never_cache
@require_GET
def platform_metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "Forbidden: /metrics/platform needs an allowed address or the bearer token.\n",
            status=403,
            content_type="text/plain",
        )
    body, content_type = render_platform(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
