"""Security headers Django 5.2 does not set itself: Content-Security-Policy.

Django gains built-in CSP support only in 6.0. Until then this small
middleware sends one fixed policy on every response. We chose it over
django-csp because the policy is static (no nonces: the screens use no inline
script or style, and htmx is configured without ``eval``), so a dependency with
its own settings format would add more than it saves; when the project moves
to Django 6.0 this becomes ``SECURE_CSP`` and the middleware goes.

The policy allows nothing inline and nothing from other origins:

* ``default-src 'self'``, ``script-src 'self'``, ``style-src 'self'``: no
  ``unsafe-inline``, no ``unsafe-eval``, so an injected ``<script>`` or event
  handler attribute does not run even if escaping were ever missed;
* ``img-src 'self' data:``; ``object-src 'none'``; ``base-uri 'none'``;
* ``form-action 'self'``: a form cannot post credentials elsewhere;
* ``frame-ancestors 'none'``: no framing (clickjacking), like X-Frame-Options DENY.

``X-Content-Type-Options``, ``Referrer-Policy``, HSTS and the cookie flags come
from Django's own ``SecurityMiddleware`` and settings (see dmobs/settings.py).
A view may set its own ``Content-Security-Policy``; it is then left as it is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.debug import SafeExceptionReporterFilter

from dmobs.vocabulary import MAX_USERNAME

DEFAULT_POLICY: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def build_policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` to every response that has none."""

    header = "Content-Security-Policy"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        directives = getattr(settings, "DMOBS_CSP", None) or DEFAULT_POLICY
        for name, value in directives.items():
            if "unsafe-" in value:
                # A policy with unsafe-inline/eval would quietly undo the point of it.
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured(f"DMOBS_CSP {name} must not allow {value!r}")
        self.policy = build_policy(directives)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.header not in response:
            response[self.header] = self.policy
        return response


class PrivateCacheMiddleware:
    """``Cache-Control: private, no-store`` on every response to a signed-in user.

    Audit pages, their htmx fragments, detail pages and exports show entries of
    one viewer's scope: no shared cache (a proxy, a CDN) may keep them, and the
    browser should not write them to disk. Directives a view set itself are kept
    (``patch_cache_control`` merges), so the admin's ``never_cache`` stays as it is.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Decided without a query: asking ``request.user`` here would load the
        # session and the user when the view did not, and with the database
        # gone that raised a second time on a 500 already logged (two error
        # lines for one request). Every signed-in request carries the session
        # cookie; a stale cookie only makes an anonymous page private too.
        user = getattr(request, "_cached_user", None)
        signed_in = user is not None and user.is_authenticated
        if signed_in or settings.SESSION_COOKIE_NAME in request.COOKIES:
            patch_cache_control(response, private=True, no_store=True)
        return response


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for sign-in throttling and the audit log.

    ``REMOTE_ADDR`` unless ``DMOBS_TRUSTED_PROXIES`` (the number of reverse
    proxies in front of the app, default 0) says there are proxies that append
    to ``X-Forwarded-For``; then the address the outermost trusted proxy saw.
    Entries further left are the client's own claims and are never trusted, so
    a client cannot dodge the per-address limit by sending the header itself.
    """
    trusted = getattr(settings, "DMOBS_TRUSTED_PROXIES", 0)
    if trusted > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= trusted:
            candidate = forwarded[-trusted]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass  # not an address: a misconfigured proxy; fall back to the peer
    return request.META.get("REMOTE_ADDR")


# django-axes stores the attempted username in a 255-character column, so a
# longer guess would be a database error (a 500) on PostgreSQL; it is counted
# under its first MAX_USERNAME characters (dmobs.vocabulary).


def axes_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The attempted username as django-axes counts it (``AXES_USERNAME_CALLABLE``)."""
    if credentials:
        value = credentials.get("username")
    else:
        value = getattr(request, "POST", {}).get("username")
    if value is None:
        return None
    return str(value)[:MAX_USERNAME]


# ``scheme://user:password@host``: the password of a URL anywhere in a string.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]*@")


def hide_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(
        lambda m: m["head"] + SafeExceptionReporterFilter.cleansed_substitute + "@", text
    )


class SecretSettingsFilter(SafeExceptionReporterFilter):
    """Django's filter for error reports (the DEBUG page, error mails) that also
    hides the password of every URL: ``DATABASE_URL`` and ``AUDIT_DATABASE_URL``
    carry theirs, and Django only hides settings named like ``PASSWORD`` or
    ``SECRET``. Applies to settings, the request's environment (``runserver``
    puts the process environment there) and the traceback's local variables."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        value = super().cleanse_setting(key, value)
        if type(value) is str:  # not a lazy object posing as one (evaluating it could fail)
            return hide_url_passwords(value)
        return value

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self.cleanse_setting(name, value) if type(value) in (str, dict) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
