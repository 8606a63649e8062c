"""Links out of an entry cannot be steered by entry data.

A resource id is quoted into the operator's template, so it can change neither
the scheme nor the host nor climb out of the template's path; a trace id that
is not 32 lowercase hex digits gets no links at all; and a template that is
not a path or an http(s) URL is refused by the system check (and never used).
Only example.test hosts; nothing here makes a network request.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from auditui import checks, links
from tests.auditui.helpers import LIST_URLS
from tests.auditui.hostile import Page, insert_hostile, is_script_url, url_attributes

APP_ORIGIN = "https://dashboard.example.test"
PAGE_URL = f"{APP_ORIGIN}/settings/audit-log/0123456789abcdef01234567/"
TEMPLATES = {
    "strategy": ("/strategies/{resource_id}", f"{APP_ORIGIN}/strategies/"),
    "goal": ("/tenants/goals/{resource_id}/edit", f"{APP_ORIGIN}/tenants/goals/"),
    "user": (
        "https://manage.example.test/users/{resource_id}",
        "https://manage.example.test/users/",
    ),
    "skill": (
        "http://skills.example.test:8080/s/{resource_id}?tab=1",
        "http://skills.example.test:8080/s/",
    ),
}
HOSTILE_IDS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "//evil.example.test/x",
    "\\\\evil.example.test/x",
    "/\\evil.example.test",
    "https://evil.example.test/",
    "../../admin",
    "..%2F..%2Fadmin",
    "%2F%2Fevil.example.test",
    "%2e%2e/%2e%2e/admin",
    "@evil.example.test",
    "user@evil.example.test",
    "x\r\nLocation: https://evil.example.test",
    "x\nSet-Cookie: a=b",
    "x\x00y",
    "?next=//evil.example.test",
    "#frag",
    "\u202egro.elpmaxe",
    "\uff0e\uff0e/admin",
    "a b\tc",
    "..",
    ".",
]


@pytest.fixture
def resource_urls(settings):
    settings.DMOBS_RESOURCE_URLS = ",".join(
        f"*:{kind}={template}" for kind, (template, _prefix) in TEMPLATES.items()
    )


def check_link(url: str | None, prefix: str) -> None:
    """The link, resolved against an app page as a browser would, stays under ``prefix``."""
    if url is None:
        return
    assert not is_script_url(url)
    assert not any(c in url for c in "\r\n\t\x00 \\")
    resolved = urljoin(PAGE_URL, url)
    assert resolved.startswith(prefix), (url, resolved)
    prefix_parts, parts = urlsplit(prefix), urlsplit(resolved)
    assert (parts.scheme, parts.netloc) == (prefix_parts.scheme, prefix_parts.netloc)
    # The id is one path segment: no "/" or dot-segment of its own.
    segment = parts.path[len(prefix_parts.path) :].split("/")[0]
    assert segment not in ("", ".", "..")


@pytest.mark.parametrize("resource_id", HOSTILE_IDS)
@pytest.mark.parametrize("resource_type", TEMPLATES)
def test_hostile_resource_ids_stay_in_the_template(resource_urls, resource_type, resource_id):
    url = links.resource_url(app="dashboard", resource_type=resource_type, resource_id=resource_id)
    if resource_id in ("..", "."):
        assert url is None
    else:
        assert url is not None
    check_link(url, TEMPLATES[resource_type][1])


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(resource_id=st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
def test_any_resource_id_stays_in_the_template(resource_id):
    raw = ",".join(f"*:{kind}={template}" for kind, (template, _p) in TEMPLATES.items())
    with override_settings(DMOBS_RESOURCE_URLS=raw):
        for kind, (_template, prefix) in TEMPLATES.items():
            url = links.resource_url(app="portal", resource_type=kind, resource_id=resource_id)
            assert (url is None) == (resource_id in ("", ".", ".."))
            check_link(url, prefix)


VALID_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "trace_id",
    [
        "javascript:alert(1)",
        VALID_TRACE + "\n",
        "\n" + VALID_TRACE,
        VALID_TRACE + "\x00",
        VALID_TRACE.upper(),
        VALID_TRACE[:-1],
        VALID_TRACE + "0",
        "0" * 32,
        f'{VALID_TRACE[:20]}"><svg>',
        "４" * 32,  # fullwidth digits
        "٤" * 32,  # Arabic-Indic digits
        " " + VALID_TRACE[1:],
        VALID_TRACE[:16] + "-" + VALID_TRACE[17:],
    ],
)
def test_trace_ids_that_are_not_32_hex_get_no_links(settings, trace_id):
    settings.DMOBS_GRAFANA_URL = "https://grafana.example.test"
    assert links.trace_links(trace_id) is None


@pytest.mark.parametrize(
    "grafana",
    [
        "javascript:alert(1)//x",
        "//grafana.example.test",
        "grafana.example.test",
        "ftp://g.example.test",
        "",
    ],
)
def test_grafana_url_that_is_not_http_gives_no_trace_links(settings, grafana):
    settings.DMOBS_GRAFANA_URL = grafana
    assert links.trace_links(VALID_TRACE) is None


def test_trace_links_go_to_grafana_only(settings):
    settings.DMOBS_GRAFANA_URL = "https://grafana.example.test/"
    result = links.trace_links(VALID_TRACE)
    for url in (result.trace_url, result.logs_url):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "https",
            "grafana.example.test",
            "/explore",
        )


BAD_TEMPLATES = [
    "javascript:alert({resource_id})",
    "JAVASCRIPT:alert({resource_id})",
    "\x01javascript:alert({resource_id})",
    "java\nscript:alert({resource_id})",
    "data:text/html,{resource_id}",
    "vbscript:{resource_id}",
    "ftp://files.example.test/{resource_id}",
    "mailto:{resource_id}@example.test",
    "//evil.example.test/{resource_id}",
    "/\\evil.example.test/{resource_id}",
    "\\\\evil.example.test/{resource_id}",
    "strategies/{resource_id}",
    "./strategies/{resource_id}",
    "../{resource_id}",
    "?id={resource_id}",
    "https:/{resource_id}",
    "https:///{resource_id}",
    "https://{resource_id}.example.test/",
    "https://example.test{resource_id}/",
    "https://user:{resource_id}@example.test/",
    "https://example.test/{resource_id}/{resource_id}",
    "/strategies/",
]


@pytest.mark.parametrize("template", BAD_TEMPLATES)
def test_misconfigured_templates_are_refused(settings, template):
    with pytest.raises(ImproperlyConfigured):
        links.parse_resource_urls(f"*:strategy={template}")
    with pytest.raises(ImproperlyConfigured):
        links.parse_resource_urls(json.dumps({"dashboard": {"strategy": template}}))
    settings.DMOBS_RESOURCE_URLS = json.dumps({"*": {"strategy": template}})
    errors = checks.check_screen_settings(None)
    assert [e.obj for e in errors] == ["DMOBS_RESOURCE_URLS"]
    assert errors[0].id.startswith("auditui.E")


def test_good_templates_pass_the_check(settings, resource_urls):
    assert checks.check_screen_settings(None) == []


@pytest.mark.django_db
@pytest.mark.parametrize("app,user", [("dashboard", "sarah"), ("manage", "root")])
def test_rendered_detail_links_stay_on_known_hosts(
    world, client, settings, resource_urls, app, user
):
    """Every link on the detail of a hostile entry: a path here, Grafana, or the template's host."""
    settings.DMOBS_GRAFANA_URL = "https://grafana.example.test"
    hostile = insert_hostile(world.tenants["acme"], now=world.now + timedelta(minutes=5))
    client.force_login(world.users[user])
    allowed_hosts = {"grafana.example.test", "manage.example.test"}
    for entry in hostile.entries:
        if app == "dashboard" and entry.resource_name == "tenant":
            continue
        html = client.get(f"{LIST_URLS[app]}/{entry.pk}/").content.decode()
        page = Page(html)
        for url in url_attributes(page):
            assert not is_script_url(url), url
            parts = urlsplit(url)
            if parts.netloc:
                assert parts.scheme in ("http", "https") and parts.hostname in allowed_hosts, url
            elif not url.startswith("#"):  # the skip link
                assert url.startswith("/") and not url.startswith(("//", "/\\")), url
        opens = [a for tag, a in page.starts if tag == "a" and a.get("class") == "link-out"]
        if entry.resource_name == "link":
            # The javascript: resource id became a quoted path segment under /strategies/.
            assert opens[0]["href"] == "/strategies/javascript%3Awindow.__xss%3D4%3Balert%284%29"
        if entry.resource_name == "trace":
            assert all("grafana" not in a["href"] for a in opens)
            assert "?trace=" not in html
