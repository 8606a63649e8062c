"""Grafana provisioning: data sources linked both ways, dashboards that parse
and only name provisioned data sources; the Alloy pipeline's label policy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ops.grafana import build_dashboards

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "ops" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict]:
    config = YAML(typ="safe").load(
        (GRAFANA / "provisioning" / "datasources" / "datasources.yaml").read_text()
    )
    return {ds["uid"]: ds for ds in config["datasources"]}


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_data_sources_have_the_fixed_uids(datasources):
    assert {uid: ds["type"] for uid, ds in datasources.items()} == {
        "prometheus": "prometheus",
        "tempo": "tempo",
        "loki": "loki",
    }


def test_a_trace_links_to_its_logs(datasources):
    to_logs = datasources["tempo"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    # traceId is structured metadata: filtered after the stream selector, and
    # `$$` keeps Grafana from expanding ${...} as an environment variable.
    assert '| traceId="$${__trace.traceId}"' in to_logs["query"]
    assert '{service="$${__span.tags["service.name"]}"}' in to_logs["query"]


def test_a_log_lines_trace_id_links_to_the_trace(datasources):
    (field,) = datasources["loki"]["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "tempo"
    assert field["matcherType"] == "label" and field["matcherRegex"] == "traceId"
    assert field["url"] == "$${__value.raw}"


def test_no_unescaped_grafana_variables_in_provisioning_files():
    for path in (GRAFANA / "provisioning").rglob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"(?<!\$)\$\{__", text), f"{path}: use $$ for Grafana's ${{__...}}"


def test_there_are_the_five_dashboards():
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {
        "System Health",
        "Audit activity",
        "LLM Cost",
        "Activity Pipeline",
        "Tenant Health",
    }


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_and_uses_only_provisioned_data_sources(path, datasources):
    dashboard = json.loads(path.read_text())
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"].strip()
    panels = all_panels(dashboard)
    assert [p for p in panels if p["type"] != "row"], "no panels"
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["title"].strip()
        assert panel["datasource"]["uid"] in datasources, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] in datasources, panel["title"]
            assert t["datasource"]["type"] == datasources[t["datasource"]["uid"]]["type"]
            assert t["expr"].strip()
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] in datasources


def test_dashboard_uids_are_unique():
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_committed_json_is_what_the_generator_writes():
    rendered = build_dashboards.render_all()
    assert sorted(rendered) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert path.read_text() == rendered[path.name], f"run `make dashboards` ({path.name})"


def test_dashboard_provider_points_at_the_mounted_directory():
    provider = YAML(typ="safe").load(
        (GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml").read_text()
    )["providers"][0]
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./ops/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def _alloy_block(text: str, name: str) -> str:
    match = re.search(rf"{re.escape(name)}\s*\{{(.*?)\n  \}}", text, re.S)
    assert match, name
    return match.group(1)


def test_alloy_labels_only_service_and_level_and_keeps_ids_as_metadata():
    text = (ROOT / "ops" / "alloy" / "config.alloy").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    labels = set(re.findall(r"(\w+)\s*=", _alloy_block(code, "stage.labels")))
    assert labels == {"values", "service", "level"}
    metadata = set(re.findall(r"(\w+)\s*=", _alloy_block(code, "stage.structured_metadata")))
    assert metadata == {"values", "traceId", "spanId", "tenantId"}
    keep = _alloy_block(code, "stage.label_keep")
    assert set(re.findall(r'"(\w+)"', keep)) == {"service", "level"}
    assert '"__path__" = "/var/log/dmobs/*.log"' in code
    assert "http://loki:3100/loki/api/v1/push" in code
    # The JSON fields the pipeline reads are the ones dmobs.observability.logger writes.
    for field in ("time", "level", "service", "traceId", "spanId", "tenantId"):
        assert re.search(rf"\b{field}\s*=", _alloy_block(code, "stage.json")), field


def test_dashboards_are_built_with_the_pinned_grafana_sdk():
    # The committed JSON is what this SDK encodes: another SDK build would
    # write other defaults, so the venv must hold exactly the pinned one.
    from importlib.metadata import version

    from grafana_foundation_sdk.builders.dashboard import Dashboard

    pins = (ROOT / "requirements-dev.txt").read_text().splitlines()
    (pin,) = [line for line in pins if line.startswith("grafana-foundation-sdk==")]
    assert version("grafana-foundation-sdk") == pin.split("==")[1]
    for name, build in build_dashboards.DASHBOARDS.items():
        board = build()
        assert isinstance(board, Dashboard), name
        assert json.loads(build_dashboards.to_json(board))["uid"] == board.build().uid
