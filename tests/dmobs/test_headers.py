"""Security headers on every kind of response, secure cookies in production
settings, and ``manage.py check --deploy`` clean with a production environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from dmobs.security import ContentSecurityPolicyMiddleware, client_ip

ROOT = Path(__file__).resolve().parents[2]

REQUIRED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'none'"},
    "object-src": {"'none'"},
}


def parse_csp(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/", "/healthz", "/no/such/page/", "/admin/login/"],
    ids=["login", "home-redirect", "healthz", "404", "admin-login"],
)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response.status_code < 500
    csp = parse_csp(response["Content-Security-Policy"])
    for name, values in REQUIRED_CSP.items():
        assert csp[name] == values, name
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_a_policy_with_unsafe_sources_is_refused_at_start(settings):
    settings.DMOBS_CSP = {"default-src": "'self'", "script-src": "'self' 'unsafe-inline'"}
    with pytest.raises(ImproperlyConfigured, match="unsafe-inline"):
        ContentSecurityPolicyMiddleware(lambda request: HttpResponse())


def test_a_view_may_set_its_own_policy(rf):
    def view(request):
        response = HttpResponse()
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = ContentSecurityPolicyMiddleware(view)(rf.get("/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"


def test_client_ip_ignores_forwarded_for_unless_proxies_are_trusted(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 192.0.2.4")
    settings.DMOBS_TRUSTED_PROXIES = 0
    assert client_ip(request) == "10.0.0.2"
    settings.DMOBS_TRUSTED_PROXIES = 1
    assert client_ip(request) == "192.0.2.4"
    settings.DMOBS_TRUSTED_PROXIES = 2
    assert client_ip(request) == "1.1.1.1"
    settings.DMOBS_TRUSTED_PROXIES = 3  # fewer hops than promised: do not guess
    assert client_ip(request) == "10.0.0.2"
    settings.DMOBS_TRUSTED_PROXIES = 1
    junk = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="<script>, not-an-ip")
    assert client_ip(junk) == "10.0.0.2"


def production_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMOBS_", "AUDIT_"))}
    for name in (
        "DEBUG",
        "DATABASE_URL",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "PYTEST_CURRENT_TEST",
        "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser tests in this process
    ):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="dmobs.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="audit.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        AUDIT_SPOOL_DIR=str(tmp_path / "spool"),
        AUDIT_WRITER_MODE="inline",
        PYTHONPATH=str(ROOT),
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_manage_py_names_a_missing_secret_key_instead_of_an_unknown_command(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    done = subprocess.run(
        [sys.executable, "manage.py", "audit_replay"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "SECRET_KEY is not set" in done.stderr
    assert "Unknown command" not in done.stderr + done.stdout


PRODUCTION_COOKIES = """
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings
from dmobs.models import User

# Only the static-file storage differs from production (no collectstatic here).
override_settings(STORAGES={
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}).enable()

call_command("migrate", verbosity=0)
User.objects.create_user("sarah", password="pw-long-enough-1")
client = Client(HTTP_HOST="audit.example.com")
page = client.get("/accounts/login/", secure=True)
print("csrf", page.cookies["csrftoken"].output())
signed_in = client.post(
    "/accounts/login/",
    {"username": "sarah", "password": "pw-long-enough-1"},
    secure=True,
)
print("status", signed_in.status_code)
print("session", signed_in.cookies["sessionid"].output())
print("hsts", signed_in["Strict-Transport-Security"])
print("redirect", client.get("/accounts/login/", secure=False).status_code)
"""


def test_production_cookies_are_secure_httponly_samesite(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PRODUCTION_COOKIES],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["status"] == "302"
    for name in ("csrf", "session"):
        cookie = lines[name].lower()
        assert "; secure" in cookie, lines[name]
        assert "; httponly" in cookie, lines[name]
        assert "samesite=lax" in cookie, lines[name]
    assert "max-age=31536000" in lines["hsts"] and "includeSubDomains" in lines["hsts"]
    assert lines["redirect"] == "301"  # plain HTTP is sent to HTTPS
