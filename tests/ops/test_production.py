"""The production deployment: docker-compose.prod.yml over docker-compose.yml,
Traefik in front of Grafana and Loki, Loki's retention.

No Docker engine, Traefik or Loki runs here. The compose files are validated
against the compose specification, the Traefik configs against Traefik's v3
JSON schemas (vendored in ops/schemas/), and what a schema cannot say is
checked on the files merged the way compose merges an override.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "docker-compose.yml"
PROD = ROOT / "docker-compose.prod.yml"
TRAEFIK = ROOT / "ops" / "traefik"
SCHEMAS = ROOT / "ops" / "schemas"
LOKI = ROOT / "ops" / "loki" / "loki.yaml"


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def merge(base, override):
    """Compose's merge of an override file: mappings merge key by key, the rest replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


@pytest.fixture(scope="module")
def prod() -> dict:
    return merge(load(DEV), load(PROD))


def check_jsonschema(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_both_compose_files_validate_against_the_compose_specification():
    result = check_jsonschema("--builtin-schema", "vendor.compose-spec", str(DEV), str(PROD))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "config", "breakage"),
    [
        ("traefik-v3.json", TRAEFIK / "traefik.yml", ("watch: true", "watch: often")),
        (
            "traefik-v3-file-provider.json",
            TRAEFIK / "dynamic" / "dmobs.yml",
            ("entryPoints:", "entrypoints:"),
        ),
    ],
    ids=["static", "dynamic"],
)
def test_traefik_configs_validate_against_traefiks_schemas(schema, config, breakage, tmp_path):
    result = check_jsonschema("--schemafile", str(SCHEMAS / schema), str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    # The schema is strict enough to catch a typo.
    broken = tmp_path / "broken.yml"
    text = config.read_text()
    assert breakage[0] in text
    broken.write_text(text.replace(*breakage, 1))
    assert check_jsonschema("--schemafile", str(SCHEMAS / schema), str(broken)).returncode != 0


def test_traefik_serves_grafana_and_loki_over_tls_behind_basic_auth(prod):
    static = load(TRAEFIK / "traefik.yml")
    dynamic = load(TRAEFIK / "dynamic" / "dmobs.yml")
    redirect = static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]
    assert redirect == {"to": "websecure", "scheme": "https", "permanent": True}
    routers = dynamic["http"]["routers"]
    targets = {r["service"]: dynamic["http"]["services"][r["service"]] for r in routers.values()}
    urls = {name: s["loadBalancer"]["servers"][0]["url"] for name, s in targets.items()}
    assert urls == {"grafana": "http://grafana:3000", "loki": "http://loki:3100"}
    for name, router in routers.items():
        assert router["entryPoints"] == ["websecure"], name
        assert "tls" in router, name
        assert "basic-auth" in router["middlewares"], name
    auth = dynamic["http"]["middlewares"]["basic-auth"]["basicAuth"]
    assert "users" not in auth  # never inline credentials
    assert auth["removeHeader"] is True
    (certificate,) = dynamic["tls"]["certificates"]
    traefik = prod["services"]["traefik"]
    mounted = {f"/run/secrets/{name}" for name in traefik["secrets"]}
    assert {auth["usersFile"], certificate["certFile"], certificate["keyFile"]} <= mounted
    assert dynamic["tls"]["options"]["default"]["minVersion"] == "VersionTLS12"
    assert sorted(traefik["ports"]) == ["443:443", "80:80"]
    # The host names the rules read are set on the traefik service.
    for router in routers.values():
        (variable,) = re.findall(r'env "(\w+)"', router["rule"])
        assert variable in traefik["environment"]


def test_no_secret_lives_in_the_repository(prod):
    for name, secret in load(PROD)["secrets"].items():
        assert re.fullmatch(r"\$\{DMOBS_\w+:\?[^}]+\}", secret["file"]), name
    for name in ("basic_auth_users", "grafana_admin_password", "tls_cert", "tls_key"):
        assert name in prod["secrets"]
    text = PROD.read_text() + (TRAEFIK / "dynamic" / "dmobs.yml").read_text()
    assert not re.search(r"\$2[aby]\$|BEGIN [A-Z ]*PRIVATE KEY|PASSWORD: [^\"\s$]", text)
    app = prod["services"]["app"]["environment"]
    assert app["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_grafana_has_no_anonymous_access_and_its_admin_password_from_a_secret(prod):
    grafana = prod["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == ""  # the image refuses both set
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "grafana_admin_password" in grafana["secrets"]
    assert env["GF_SECURITY_COOKIE_SECURE"] == "true"
    # Development keeps the anonymous viewer.
    assert load(DEV)["services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"


def test_tempo_and_mongodb_are_optional_profiles(prod):
    services = prod["services"]
    assert services["tempo"]["profiles"] == ["tracing"]
    assert services["mongodb"]["profiles"] == ["mongodb"]
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            if services[dependency].get("profiles") and not service.get("profiles"):
                assert how.get("required") is False, f"{name} needs optional {dependency}"
    # Without Tempo the app exports no spans (and still serves).
    assert services["app"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":-}")


def expand_like_loki(text: str, env: dict[str, str]) -> str:
    """Loki's -config.expand-env: ${VAR} and ${VAR:-default}."""

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", value, text)


def test_loki_keeps_logs_30_days_in_development_and_90_in_production(prod):
    for service, days in ((load(DEV)["services"]["loki"], 30), (prod["services"]["loki"], 90)):
        assert "-config.expand-env=true" in service["command"]
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        config = YAML(typ="safe").load(expand_like_loki(LOKI.read_text(), env))
        assert config["limits_config"]["retention_period"] == f"{days * 24}h"
        # Retention deletes only when the compactor does it.
        assert config["compactor"]["retention_enabled"] is True
        assert config["compactor"]["delete_request_store"] == "filesystem"
