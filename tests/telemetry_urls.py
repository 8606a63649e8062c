"""URLs for the telemetry tests only: the app's own, plus views that fail in
each layer and one that calls out over HTTP (never in the product's URLconf)."""

from __future__ import annotations

import json

import httpx
import requests
from django.http import HttpResponse, StreamingHttpResponse
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import path

from dmobs.observability.logger import get_logger
from dmobs.observability.tracing import current_span_id, current_trace_id
from dmobs.urls import urlpatterns as app_urlpatterns

log = get_logger("tests.telemetry")


class ViewFailure(RuntimeError):
    pass


class TemplateFailure(RuntimeError):
    silent_variable_failure = False


class BodyFailure(RuntimeError):
    pass


def view_fails(request):
    log.info("view about to fail")
    raise ViewFailure("the view failed")


class _Exploding:
    @property
    def value(self):
        raise TemplateFailure("the template failed")


def template_fails(request):
    template = engines["django"].from_string("<p>{{ thing.value }}</p>")
    return TemplateResponse(request, template, {"thing": _Exploding()})


def body_fails(request):
    def body():
        yield b"first part\n"
        log.info("streaming body half sent")
        raise BodyFailure("the body failed")

    return StreamingHttpResponse(body(), content_type="text/plain")


def streams(request):
    def body():
        yield b"one\n"
        log.info("streaming body running")
        yield b"two\n"

    return StreamingHttpResponse(body(), content_type="text/plain")


def logs_a_line(request):
    log.info("view line", user_seen=request.user.is_authenticated)
    return HttpResponse("ok")


def calls_out(request):
    """An inbound request that calls a remote service with requests and httpx."""
    target = request.GET["target"]
    first = requests.get(f"{target}/via-requests?key=secret-api-key", timeout=10)
    second = httpx.get(f"{target}/via-httpx", timeout=10)
    body = {
        "trace_id": current_trace_id(),
        "span_id": current_span_id(),
        "statuses": [first.status_code, second.status_code],
    }
    return HttpResponse(json.dumps(body), content_type="application/json")


urlpatterns = [
    path("t/view-fails", view_fails),
    path("t/template-fails", template_fails),
    path("t/body-fails", body_fails),
    path("t/streams", streams),
    path("t/logs", logs_a_line),
    path("t/calls-out", calls_out),
    *app_urlpatterns,
]


class FailingMiddleware:
    """Raises for requests that carry ``X-Fail-In-Middleware`` (the tests put it
    after the session middleware, as a database error there would be)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "X-Fail-In-Middleware" in request.headers:
            raise MiddlewareFailure("a middleware failed")
        return self.get_response(request)


class MiddlewareFailure(RuntimeError):
    pass
