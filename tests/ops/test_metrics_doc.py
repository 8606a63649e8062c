"""docs/METRICS.md lists every metric the dashboards read and the collectors export."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "METRICS.md").read_text()
SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def documented(name: str) -> bool:
    if f"`{name}`" in DOC or f"`{name}_total`" in DOC:  # a counter family's samples
        return True
    for suffix in SUFFIXES:
        if name.endswith(suffix) and f"`{name.removesuffix(suffix)}" in DOC:
            return True
    return name.endswith("_count") and f"`{name.removesuffix('_count')}_sum`, `_count`" in DOC


def test_every_metric_of_the_dashboards_is_documented():
    names = set()
    for path in (ROOT / "ops" / "grafana" / "dashboards").glob("*.json"):
        for expr in re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', path.read_text()):
            names |= set(re.findall(r"\b((?:dmobs|django)_[a-z0-9_]+)", json.loads(f'"{expr}"')))
    assert len(names) > 30
    missing = sorted(n for n in names if not documented(n))
    assert not missing, missing


def test_every_metric_the_collectors_export_is_documented():
    names = set()
    for path in (ROOT / "dmobs" / "collectors").glob("*.py"):
        names |= set(re.findall(r'"(dmobs_[a-z0-9_]+)"', path.read_text()))
    assert {"dmobs_bullmq_dead_letter_jobs", "dmobs_llm_cost_usd", "dmobs_activities"} <= names
    missing = sorted(n for n in names if not documented(n))
    assert not missing, missing
