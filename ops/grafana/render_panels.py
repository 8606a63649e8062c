"""``make dashboard-screenshots``: the seed dashboards' panels, drawn from real
Prometheus data, as PNGs in docs/dashboards/.

Grafana cannot run here, so this draws the same panels another honest way:

1. a fresh SQLite database with ``seed_demo``, and demo jobs in BullMQ queues
   made by the real bullmq package (a key prefix of its own, removed after);
2. the app (``manage.py runserver``) and Debian's Prometheus scraping its
   ``/metrics`` and ``/metrics/platform`` for a minute, with some traffic, and
   the uptime probes of ops/prometheus/prometheus.yml through Debian's blackbox
   exporter: the three apps' ``/readyz`` on this app, the platform API a local
   stand-in answering 200 (the demo runs no API);
3. every Prometheus target of each dashboard's JSON file, sent as Grafana
   would send it (range queries for time series, instant queries for stats,
   tables, bar gauges and pie charts);
4. the answers drawn as SVG in an HTML page laid out on the dashboard's grid
   (Grafana's 24 columns), screenshotted by headless Chromium.

The numbers are Prometheus's answers, unedited; colours, fonts and layout are
this script's, not Grafana's. Loki panels are marked as not rendered.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DASHBOARDS = ("system-health", "llm-cost", "activity-pipeline", "tenant-health")
OUT = ROOT / "docs" / "dashboards"
SCRAPE_SECONDS = float(os.environ.get("DMOBS_RENDER_SCRAPE_SECONDS", "60"))
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$job": ".+"}
COLORS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
CELL_W, CELL_H = 56, 30


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"render_panels: {url} did not answer")


def prom_get(base: str, path: str, **params: str) -> dict:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


# --- formatting -------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if value is None or math.isnan(value):
        return "–"
    if unit == "currencyUSD":
        return f"${value:,.2f}"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
            if abs(value) >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.2f} s"
    if unit in ("reqps", "ops"):
        return f"{value:.2f}/s"
    if abs(value) >= 1_000_000:
        return f"{value / 1e6:.2f}M"
    if abs(value) >= 10_000:
        return f"{value / 1e3:.1f}k"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"


def legend(fmt_string: str, metric: dict) -> str:
    if not fmt_string or fmt_string == "__auto":
        labels = {k: v for k, v in metric.items() if k not in ("job", "instance", "service")}
        return ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"
    out = fmt_string
    for key, value in metric.items():
        out = out.replace("{{" + key + "}}", value)
    return out.replace("{{", "").replace("}}", "")


def threshold_color(panel: dict, value: float) -> str:
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps")
    color = "#1f78c1"
    for step in steps or []:
        if step["value"] is None or (value is not None and value >= step["value"]):
            color = {"green": "#56a64b", "red": "#e02f44", "orange": "#ff9830"}.get(
                step["color"], "#3274d9"
            )
    return color


# --- panels ------------------------------------------------------------------


def draw_timeseries(panel, series, w, h, unit) -> str:
    if not series:
        return "<p class=empty>No data</p>"
    xs = [t for s in series for t, _ in s["points"]]
    ys = [v for s in series for _, v in s["points"] if not math.isnan(v)]
    if not ys:
        return "<p class=empty>No data</p>"
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(0.0, min(ys)), max(ys)
    if y1 == y0:
        y1 = y0 + 1
    pw, ph = w - 70, h - 30 - 16 * min(len(series), 6)
    parts = [f'<svg width="{w}" height="{h}">']
    for i in range(3):
        y = 5 + ph * i / 2
        val = y1 - (y1 - y0) * i / 2
        parts.append(f'<line x1="60" x2="{60 + pw}" y1="{y}" y2="{y}" class=grid />')
        parts.append(f'<text x="56" y="{y + 4}" class=axis text-anchor=end>{fmt(val, unit)}</text>')
    for i, s in enumerate(series):
        pts = " ".join(
            f"{60 + pw * (t - x0) / max(x1 - x0, 1):.1f},{5 + ph * (y1 - v) / (y1 - y0):.1f}"
            for t, v in s["points"]
            if not math.isnan(v)
        )
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
    for i, s in enumerate(series[:6]):
        y = ph + 24 + 16 * i
        last = s["points"][-1][1]
        parts.append(f'<rect x="60" y="{y - 9}" width="10" height="10" fill="{COLORS[i % 8]}"/>')
        label = html.escape(s["name"][:60])
        parts.append(f'<text x="76" y="{y}" class=leg>{label}  {fmt(last, unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def draw_stat(panel, values, w, h, unit) -> str:
    if not values:
        return "<p class=empty>No data</p>"
    cells = []
    for name, value in values[:4]:
        color = threshold_color(panel, value)
        label = f"<small>{html.escape(name)}</small>" if len(values) > 1 else ""
        cells.append(f'<div class=stat style="background:{color}">{label}{fmt(value, unit)}</div>')
    return "".join(cells)


def draw_bars(panel, values, w, h, unit) -> str:
    if not values:
        return "<p class=empty>No data</p>"
    top = max((abs(v) for _, v in values if not math.isnan(v)), default=1) or 1
    rows = []
    for name, value in values[:12]:
        width = 0 if math.isnan(value) else 100 * abs(value) / top
        color = threshold_color(panel, value)
        rows.append(
            f"<div class=bar><span>{html.escape(name)}</span>"
            f'<i style="width:{width:.0f}%;background:{color}"></i><b>{fmt(value, unit)}</b></div>'
        )
    return "".join(rows)


def draw_pie(panel, values, w, h, unit) -> str:
    total = sum(v for _, v in values if v > 0) or 1
    r, cx, cy = min(w * 0.25, h / 2 - 20), min(w * 0.25, h / 2 - 20) + 10, h / 2 - 10
    angle, parts = 0.0, [f'<svg width="{w}" height="{h - 20}">']
    for i, (name, value) in enumerate(values):
        share = max(value, 0) / total
        a0, a1 = angle, angle + share * 2 * math.pi
        angle = a1
        large = 1 if share > 0.5 else 0
        p0 = (cx + r * math.sin(a0), cy - r * math.cos(a0))
        p1 = (cx + r * math.sin(a1 - 1e-6), cy - r * math.cos(a1 - 1e-6))
        parts.append(
            f'<path d="M{cx},{cy} L{p0[0]:.1f},{p0[1]:.1f} A{r},{r} 0 {large} 1 '
            f'{p1[0]:.1f},{p1[1]:.1f} Z" fill="{COLORS[i % 8]}"/>'
        )
        parts.append(
            f'<rect x="{2 * r + 30}" y="{20 + 18 * i}" width="10" height="10" '
            f'fill="{COLORS[i % 8]}"/>'
            f'<text x="{2 * r + 46}" y="{29 + 18 * i}" class=leg>{html.escape(name)}: '
            f"{fmt(value, unit)}"
            + ("" if unit == "percentunit" else f" ({share * 100:.0f}%)")
            + "</text>"
        )
    parts.append(f'<circle cx="{cx}" cy="{cy}" r="{r * 0.5}" fill="#181b1f"/></svg>')
    return "".join(parts)


def draw_table(panel, results, w, h, unit) -> str:
    """One row per label set, one column per target (A, B, ...), as Grafana's merge does."""
    rows: dict[tuple, dict] = {}
    columns = []
    for ref, samples in results:
        columns.append(ref)
        for metric, value in samples:
            labels = tuple(
                sorted((k, v) for k, v in metric.items() if k not in ("job", "instance", "service"))
            )
            rows.setdefault(labels, {})[ref] = value
    names = sorted({k for labels in rows for k, _ in labels})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    head += "".join(f"<th>Value #{c}</th>" for c in columns)
    body = []
    for labels, vals in list(rows.items())[:14]:
        d = dict(labels)
        cells = "".join(f"<td>{html.escape(d.get(n, ''))}</td>" for n in names)
        cells += "".join(f"<td class=num>{fmt(vals.get(c, math.nan), unit)}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_dashboard(prom: str, dashboard: dict, start: float, end: float) -> str:
    blocks = []
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        x, y, w, h = pos["x"] * CELL_W, pos["y"] * CELL_H, pos["w"] * CELL_W, pos["h"] * CELL_H
        style = f"left:{x}px;top:{y}px;width:{w - 8}px;height:{h - 8}px"
        title = html.escape(panel.get("title", ""))
        if panel["type"] == "row":
            blocks.append(f'<div class=row style="{style}">{title}</div>')
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        targets = [t for t in panel.get("targets", []) if t["datasource"]["uid"] == "prometheus"]
        if not targets:
            body = "<p class=empty>Loki panel: not rendered here (no Loki)</p>"
        elif panel["type"] == "timeseries":
            series = []
            for t in targets:
                expr = substitute(t["expr"])
                step = max(1.0, (end - start) / 120)
                result = prom_get(
                    prom, "query_range", query=expr, start=str(start), end=str(end), step=str(step)
                )
                for s in result["data"]["result"]:
                    points = [(float(a), float(b)) for a, b in s["values"]]
                    series.append(
                        {"name": legend(t.get("legendFormat"), s["metric"]), "points": points}
                    )
            body = draw_timeseries(panel, series, w - 20, h - 40, unit)
        else:
            results = []
            for t in targets:
                answer = prom_get(prom, "query", query=substitute(t["expr"]), time=str(end))
                samples = [(s["metric"], float(s["value"][1])) for s in answer["data"]["result"]]
                results.append((t["refId"], samples))
            values = [
                (legend(t.get("legendFormat"), m), v)
                for t, (_, samples) in zip(targets, results, strict=True)
                for m, v in samples
            ]
            draw = {
                "stat": draw_stat,
                "bargauge": draw_bars,
                "piechart": draw_pie,
            }.get(panel["type"])
            body = (
                draw(panel, values, w - 20, h - 40, unit)
                if draw
                else draw_table(panel, results, w - 20, h - 40, unit)
            )
        blocks.append(f'<div class=panel style="{style}"><h3>{title}</h3>{body}</div>')
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"]) * CELL_H
    return PAGE.format(
        title=html.escape(dashboard["title"]),
        height=height + 60,
        width=24 * CELL_W,
        note=html.escape(
            f"Rendered by ops/grafana/render_panels.py from Prometheus answers to this "
            f"dashboard's queries, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end))} "
            "(not a Grafana screenshot)."
        ),
        blocks="\n".join(blocks),
    )


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #111217; color: #ccccdc; font: 13px sans-serif; }}
header {{ padding: 10px 16px; font-size: 18px; }}
header small {{ font-size: 11px; color: #8e8e9e; }}
main {{ position: relative; width: {width}px; height: {height}px; margin: 0 8px; }}
.panel, .row {{ position: absolute; box-sizing: border-box; }}
.panel {{ background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; padding: 6px 8px;
  overflow: hidden; }}
.row {{ font-size: 15px; font-weight: bold; padding-top: 6px; }}
h3 {{ margin: 0 0 6px; font-size: 13px; font-weight: 500; }}
.empty {{ color: #8e8e9e; }}
.stat {{ display: inline-block; margin: 2px; padding: 8px 12px; border-radius: 3px; color: #fff;
  font-size: 26px; font-weight: 500; min-width: 80px; }}
.stat small {{ display: block; font-size: 11px; }}
.bar {{ display: flex; align-items: center; margin: 3px 0; }}
.bar span {{ flex: 0 0 32%; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }}
.bar i {{ display: block; height: 14px; margin: 0 6px; min-width: 2px; }}
.bar b {{ font-weight: 500; white-space: nowrap; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12px; }}
th, td {{ border-bottom: 1px solid #2c3235; padding: 3px 6px; text-align: left; }}
td.num {{ text-align: right; }}
svg text {{ fill: #ccccdc; font-size: 11px; }} .grid {{ stroke: #2c3235; }}
</style><title>{title}</title></head><body>
<header>{title} <small>{note}</small></header><main>{blocks}</main></body></html>"""


class ApiStandIn:
    """Stands for the platform API in the demo: 200 on /health."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def terminate(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, timeout: float) -> None:
        pass


def probe_jobs(blackbox: str, app: str, api_url: str, tmp: Path) -> list[dict]:
    """The committed uptime jobs, their addresses pointed at this run's servers."""
    from ruamel.yaml import YAML

    config = YAML(typ="safe").load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    jobs = [
        json.loads(json.dumps(job))  # one copy each: they share a YAML anchor
        for job in config["scrape_configs"]
        if job["job_name"] in ("uptime", "uptime-api")
    ]
    for job in jobs:
        job["scrape_interval"] = job["scrape_timeout"] = "2s"
        for rule in job["relabel_configs"]:
            if rule.get("target_label") == "__address__":
                rule["replacement"] = blackbox
        for group in job.get("static_configs", []):
            group["targets"] = [f"http://{app}/readyz"]
        if "file_sd_configs" in job:
            targets = tmp / "api-targets.json"
            targets.write_text(json.dumps([{"targets": [api_url], "labels": {"service": "API"}}]))
            job["file_sd_configs"] = [{"files": [str(targets)]}]
    return jobs


def main() -> int:
    prometheus = shutil.which("prometheus")
    blackbox = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    node = shutil.which("node")
    chromium = shutil.which("chromium")
    if not (prometheus and node and chromium and blackbox):
        print(
            "render_panels: needs prometheus, prometheus-blackbox-exporter, node and "
            "chromium on PATH",
            file=sys.stderr,
        )
        return 2
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"dmobs_render_{uuid.uuid4().hex[:10]}"
    procs = []
    with tempfile.TemporaryDirectory(prefix="dmobs-render-") as tmp:
        tmp = Path(tmp)
        env = {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp / 'demo.sqlite3'}",
            "AUDIT_DATABASE_URL": f"sqlite:///{tmp / 'demo.sqlite3'}",
            "REDIS_URL": redis_url,
            "DMOBS_BULLMQ_PREFIX": prefix,
            "AUDIT_SPOOL_DIR": str(tmp / "spool"),
            "DMOBS_ACCESS_LOG": "false",
        }
        env.pop("LLM_CALLS_DATABASE_URL", None)
        py = sys.executable
        try:
            print("Seeding the demo into a temporary database ...", flush=True)
            subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            subprocess.run(
                [py, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True
            )
            print("BullMQ demo jobs ...", flush=True)
            subprocess.run(
                [node, "ops/bullmq/demo-jobs.mjs", "--redis", redis_url, "--prefix", prefix],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            app_port, prom_port = free_port(), free_port()
            app = f"127.0.0.1:{app_port}"
            procs.append(
                subprocess.Popen(
                    [py, "manage.py", "runserver", "--noreload", app],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_http(f"http://{app}/healthz")
            api = ApiStandIn()
            procs.append(api)
            blackbox_address = f"127.0.0.1:{free_port()}"
            procs.append(
                subprocess.Popen(
                    [
                        blackbox,
                        f"--config.file={ROOT / 'ops' / 'prometheus' / 'blackbox.yml'}",
                        f"--web.listen-address={blackbox_address}",
                        "--log.level=warn",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_http(f"http://{blackbox_address}/-/healthy")
            static = [{"targets": [app]}]
            config = {
                "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
                "rule_files": [str(ROOT / "ops" / "prometheus" / "alerts.yml")],
                "scrape_configs": [
                    {"job_name": "dmobs", "static_configs": static},
                    {
                        "job_name": "dmobs-platform",
                        "metrics_path": "/metrics/platform",
                        "static_configs": static,
                    },
                    *probe_jobs(blackbox_address, app, api.url, tmp),
                ],
            }
            (tmp / "prometheus.yml").write_text(json.dumps(config))
            procs.append(
                subprocess.Popen(
                    [
                        prometheus,
                        f"--config.file={tmp / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp / 'prom'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                        "--enable-feature=exemplar-storage",
                        "--log.level=warn",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            prom = f"http://127.0.0.1:{prom_port}"
            wait_http(f"{prom}/-/ready")
            print(f"Prometheus scraping for {SCRAPE_SECONDS:.0f} s, with traffic ...", flush=True)
            start = time.time()
            paths = ("/healthz", "/accounts/login/", "/no-such-page/", "/")
            while time.time() - start < SCRAPE_SECONDS:
                for path in paths:
                    try:
                        urllib.request.urlopen(f"http://{app}{path}", timeout=10).read()
                    except OSError:
                        pass
                time.sleep(0.5)
            end = time.time()
            OUT.mkdir(parents=True, exist_ok=True)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=chromium,
                    args=[
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                    ],
                )
                page = browser.new_page(viewport={"width": 24 * CELL_W + 16, "height": 900})
                for name in DASHBOARDS:
                    dashboard = json.loads(
                        (ROOT / "ops" / "grafana" / "dashboards" / f"{name}.json").read_text()
                    )
                    page_html = render_dashboard(prom, dashboard, start, end)
                    (tmp / f"{name}.html").write_text(page_html)
                    page.goto((tmp / f"{name}.html").as_uri())
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(f"wrote {OUT / f'{name}.png'}", flush=True)
                browser.close()
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            try:
                import redis

                client = redis.Redis.from_url(redis_url)
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                if keys:
                    client.delete(*keys)
            except Exception as exc:  # noqa: BLE001 - cleanup: say so, go on
                print(f"render_panels: could not remove {prefix}:* from Redis: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
