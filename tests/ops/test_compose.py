"""docker-compose.yml: valid against the compose specification, and consistent
in the ways the schema cannot check (no Docker engine runs here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text())


# The compose files themselves are validated by
# tests/ops/test_production.py::test_both_compose_files_validate_against_the_compose_specification.


def test_the_schema_check_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  app:\n    image: x:1\n    ports: 8000\n    depends_on: 3\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_every_design_service_is_there(compose):
    services = set(compose["services"])
    for name in ("app", "postgres", "mongodb", "grafana", "loki", "tempo", "prometheus", "alloy"):
        assert name in services, name
    assert "promtail" not in services  # end-of-life March 2026; Alloy ships the logs


def test_depends_on_names_existing_services(compose):
    services = set(compose["services"])
    for name, service in compose["services"].items():
        depends = service.get("depends_on", {})
        names = depends if isinstance(depends, list) else list(depends)
        for dependency in names:
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name


def _bind_sources(service: dict) -> list[str]:
    sources = []
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
        if source and source.startswith((".", "/")):
            sources.append(source)
    return sources


def test_mounted_config_files_exist_in_the_repo(compose):
    mounted = []
    for name, service in compose["services"].items():
        for source in _bind_sources(service):
            assert source.startswith("./"), f"{name} mounts {source}: keep configs in the repo"
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            mounted.append(source)
    for name, secret in compose.get("secrets", {}).items():
        if secret["file"].startswith("${"):
            # A key made on the machine (make audit-key), never in the repository:
            # its default path lies in the git-ignored var/.
            default = secret["file"].split(":-", 1)[1].rstrip("}")
            assert default.startswith("./var/"), f"secret {name}: default {default} not in var/"
            continue
        assert (ROOT / secret["file"]).is_file(), f"secret {name}: missing {secret['file']}"
    assert any(source.startswith("./ops/") for source in mounted)


def test_named_volumes_are_declared(compose):
    declared = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_images_are_pinned_never_latest(compose):
    for name, service in compose["services"].items():
        image = service.get("image")
        if "build" in service:
            assert (ROOT / service["build"].get("dockerfile", "Dockerfile")).is_file()
            continue
        assert image, f"{name} has neither image nor build"
        assert ":" in image, f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("FROM "):
            image = line.split()[1]
            assert ":" in image and not image.endswith(":latest"), line


def test_every_long_running_service_has_a_health_check(compose):
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue  # one-shot init
        assert "healthcheck" in service, f"{name} has no health check"
        probe = service["healthcheck"]["test"]
        if "/probe/busybox" in probe:
            mounts = [v.split(":")[:2] for v in service["volumes"]]
            assert ["probe-bin", "/probe"] in mounts, f"{name} uses the probe without mounting it"


def _host_ports(service: dict) -> dict[int, int]:
    """container port -> host port."""
    ports = {}
    for mapping in service.get("ports", []):
        parts = str(mapping).split(":")
        host, container = int(parts[-2]), int(parts[-1].split("/")[0])
        ports[container] = host
    return ports


def test_grafana_on_3100_and_loki_on_3101(compose):
    assert _host_ports(compose["services"]["grafana"]) == {3000: 3100}
    assert _host_ports(compose["services"]["loki"]) == {3100: 3101}


def test_host_ports_are_unique_and_local(compose):
    seen = {}
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            assert parts[0] == "127.0.0.1", f"{name} publishes {mapping} beyond localhost"
            assert parts[-2] not in seen, f"{name} and {seen.get(parts[-2])} share {parts[-2]}"
            seen[parts[-2]] = name


def test_app_wiring_matches_the_stack(compose):
    app = compose["services"]["app"]
    env = app["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo:4318"
    assert env["LOG_FILE"].startswith("/var/log/dmobs/")
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert "/tmp" in app["tmpfs"]
    assert "app" in env["ALLOWED_HOSTS"].split(",")
    alloy_volumes = compose["services"]["alloy"]["volumes"]
    assert "app-logs:/var/log/dmobs:ro" in alloy_volumes
    assert "app-logs:/var/log/dmobs" in app["volumes"]
    assert "metrics_token" in compose["services"]["prometheus"]["secrets"]


def test_app_healthcheck_asks_readiness(compose):
    """The healthcheck is the readiness endpoint (database and audit store), not
    the liveness one; tests/ops/test_outage.py shows /readyz failing with the
    database gone while /healthz holds."""
    (command,) = [
        part for part in compose["services"]["app"]["healthcheck"]["test"] if "http" in part
    ]
    assert "http://127.0.0.1:8000/readyz" in command
    assert "/healthz" not in command


@pytest.mark.skipif(
    not __import__("shutil").which("prometheus"), reason="the prometheus binary is not installed"
)
def test_compose_runs_the_prometheus_version_the_tests_run(compose):
    """The tests evaluate the alerts and dashboards on the local prometheus
    (Debian's package): compose pins that same version."""
    out = subprocess.run(
        ["prometheus", "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    local = re.search(r"version (\d+\.\d+\.\d+)", out).group(1)
    image = compose["services"]["prometheus"]["image"]
    assert image == f"prom/prometheus:v{local}", (image, local)
