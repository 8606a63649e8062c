"""Links out of an entry: trace, logs and resource URLs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured

from auditui import links

VALID = "4bf92f3577b34da6a3ce929d0e0e4736"


def panes(url: str) -> dict:
    return json.loads(parse_qs(urlsplit(url).query)["panes"][0])


def test_valid_trace_id_gives_tempo_and_loki_links(settings):
    settings.DMOBS_GRAFANA_URL = "https://grafana.example.com/"
    settings.DMOBS_TEMPO_DATASOURCE_UID = "tempo-uid"
    settings.DMOBS_LOKI_DATASOURCE_UID = "loki-uid"
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    result = links.trace_links(VALID, at=at)
    assert result.trace_url.startswith("https://grafana.example.com/explore?")
    trace = panes(result.trace_url)["trace"]
    assert trace["datasource"] == "tempo-uid"
    assert trace["queries"][0]["query"] == VALID
    assert trace["queries"][0]["datasource"] == {"type": "tempo", "uid": "tempo-uid"}
    assert int(trace["range"]["from"]) < at.timestamp() * 1000 < int(trace["range"]["to"])
    logs = panes(result.logs_url)["logs"]
    assert logs["datasource"] == "loki-uid"
    assert VALID in logs["queries"][0]["expr"]


@pytest.mark.parametrize(
    "trace_id",
    [None, "", "0" * 32, VALID[:-1], VALID + "0", VALID.upper(), "g" * 32, "javascript:alert(1)"],
)
def test_invalid_or_zero_trace_id_gives_no_links(trace_id):
    assert links.trace_links(trace_id) is None


def test_no_links_when_grafana_url_is_not_http(settings):
    settings.DMOBS_GRAFANA_URL = "javascript:alert(1)//"
    assert links.trace_links(VALID) is None


def test_resource_urls_from_pairs_and_json(settings):
    settings.DMOBS_RESOURCE_URLS = "dashboard:strategy=/strategies/{resource_id},*:user=https://manage.example.com/u/{resource_id}"
    url = links.resource_url(app="dashboard", resource_type="strategy", resource_id="st 42/x?y")
    assert url == "/strategies/st%2042%2Fx%3Fy"
    assert links.resource_url(app="portal", resource_type="strategy", resource_id="st_1") is None
    assert (
        links.resource_url(app="portal", resource_type="user", resource_id="u1")
        == "https://manage.example.com/u/u1"
    )
    settings.DMOBS_RESOURCE_URLS = json.dumps({"portal": {"activity": "/activities/{resource_id}"}})
    assert (
        links.resource_url(app="portal", resource_type="activity", resource_id="a1")
        == "/activities/a1"
    )


@pytest.mark.parametrize(
    "resource_id",
    ["javascript:alert(1)", "//evil.example.com", "https://evil.example.com", "..", ".", ""],
)
def test_entry_data_cannot_make_scripts_or_other_hosts(settings, resource_id):
    settings.DMOBS_RESOURCE_URLS = (
        "*:strategy=/s/{resource_id},*:user=https://a.example.com/{resource_id}"
    )
    for resource_type, prefix in (("strategy", "/s/"), ("user", "https://a.example.com/")):
        url = links.resource_url(app="manage", resource_type=resource_type, resource_id=resource_id)
        if url is not None:
            assert url.startswith(prefix)
            rest = url[len(prefix) :]
            assert ":" not in rest and "/" not in rest


@pytest.mark.parametrize(
    "raw",
    [
        "dashboard:strategy=javascript:alert({resource_id})",
        "dashboard:strategy=//evil.example.com/{resource_id}",
        "dashboard:strategy=https://{resource_id}.example.com/",
        "dashboard:strategy=/no-placeholder",
        "dashboard:strategy=/{resource_id}/{other}",
        "nope:strategy=/{resource_id}",
        "strategy=/{resource_id}",
        "{not json",
    ],
)
def test_bad_templates_are_refused(raw):
    with pytest.raises(ImproperlyConfigured):
        links.parse_resource_urls(raw)
