"""The uptime probes as deployed, for the tests: the real blackbox exporter
(Debian's ``prometheus-blackbox-exporter``, installed by ``.ci/run``) with the
committed ops/prometheus/blackbox.yml, and the committed probe jobs of
ops/prometheus/prometheus.yml with only their addresses pointed at servers on
127.0.0.1; plus a tiny HTTP server standing for the platform API."""

from __future__ import annotations

import copy
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.obs_helpers import free_port
from tests.ops.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "ops" / "prometheus"
BLACKBOX_CONFIG = PROMETHEUS_DIR / "blackbox.yml"
UPTIME_JOBS = ("uptime", "uptime-api")

BLACKBOX = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
needs_blackbox = pytest.mark.skipif(
    BLACKBOX is None,
    reason="the blackbox exporter is not installed "
    "(apt-get install prometheus-blackbox-exporter; .ci/run does)",
)


class BlackboxExporter(ServerProcess):
    name = "blackbox exporter"

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        argv = [
            BLACKBOX,
            f"--config.file={BLACKBOX_CONFIG}",
            f"--web.listen-address={self.address}",
            "--log.level=warn",
        ]
        super().__init__(argv, workdir=workdir, health_url=f"http://{self.address}/-/healthy")


class ApiStandIn:
    """Stands for the platform API: 200 on /health until stopped."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                ok = self.path == "/health"
                body = b'{"status":"ok"}' if ok else b"not found"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


def committed_uptime_jobs() -> list[dict]:
    config = YAML(typ="safe").load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in UPTIME_JOBS]
    assert [job["job_name"] for job in jobs] == list(UPTIME_JOBS)
    return jobs


def uptime_jobs(
    blackbox: str, apps: dict[str, str], api_url: str, workdir: Path, interval: str = "2s"
) -> list[dict]:
    """The committed probe jobs with the apps' URLs (``{service: url}``), the
    API's (through a file_sd file, as deployed) and the exporter's address
    replaced; every other field (module, relabelling, labels) as committed.

    The exporter gives a probe the scrape timeout less half a second, so a
    probe job is never scraped faster than every 2 s here."""
    # One copy per job: the committed jobs share their relabelling (a YAML anchor).
    jobs = [copy.deepcopy(job) for job in committed_uptime_jobs()]
    for job in jobs:
        job["scrape_interval"] = interval
        job["scrape_timeout"] = interval
        for rule in job["relabel_configs"]:
            if rule.get("target_label") == "__address__":
                assert rule["replacement"] == "blackbox:9115"
                rule["replacement"] = blackbox
    apps_job, api_job = jobs
    for group in apps_job["static_configs"]:
        group["targets"] = [apps[group["labels"]["service"]]]
    assert sorted(apps) == sorted(g["labels"]["service"] for g in apps_job["static_configs"])

    committed = YAML(typ="safe").load((PROMETHEUS_DIR / "targets" / "api.yml").read_text())
    (group,) = committed
    assert api_job["file_sd_configs"] == [{"files": ["/etc/prometheus/targets/api.yml"]}]
    targets = workdir / "api-targets.yml"
    targets.write_text(json.dumps([{"targets": [api_url], "labels": group["labels"]}]))
    api_job["file_sd_configs"] = [{"files": [str(targets)]}]
    return jobs
