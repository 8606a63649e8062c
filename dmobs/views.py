"""Operational endpoints of the project package (``/metrics``)."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dmobs.observability.metrics import render_latest


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _address_allowed(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if getattr(ip, "ipv4_mapped", None) is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return any(ip in network for network in settings.DMOBS_METRICS_ALLOWED_NETWORKS)


def metrics_allowed(request: HttpRequest) -> bool:
    """A scraper may read /metrics with the bearer token, or from an allowed address.

    The address is the socket's peer (``REMOTE_ADDR``), never a forwarded
    header a client could write itself.
    """
    token = settings.DMOBS_METRICS_TOKEN
    offered = _bearer_token(request)
    if token and offered is not None and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    return _address_allowed(request.META.get("REMOTE_ADDR"))


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "Forbidden: /metrics needs an allowed address or the bearer token.\n",
            status=403,
            content_type="text/plain",
        )
    body, content_type = render_latest(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
