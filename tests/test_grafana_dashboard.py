"""deploy/grafana/vitrine.json queries only metrics that a real signaling node and a real scaled media worker expose,
and both scrapes pass ``promtool check metrics`` (Debian's ``prometheus`` package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.metrics_helpers import exposed_names, scaled_cluster, scrape

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "vitrine.json"

# PromQL words that look like metric names: functions are recognised by the "(" that follows them instead.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: label matchers, ranges, groupings, strings, functions and
    keywords taken out."""
    rest = _STRINGS.sub(" ", expr)
    rest = _MATCHERS.sub(" ", rest)
    rest = _RANGES.sub(" ", rest)
    rest = _GROUPINGS.sub(" ", rest)
    return {name for name in _IDENTIFIER.findall(rest) if name not in KEYWORDS}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every query."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le, node) (rate(vitrine_consult_wait_seconds_bucket{node=~"$node",'
        ' x="a{b}"}[$__rate_interval]))) / on (node) group_left sum(up) or vector(0) > bool 8 * process_open_fds'
    )
    assert metric_names(expr) == {"vitrine_consult_wait_seconds_bucket", "up", "process_open_fds"}


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "node"} <= variables
    for title, expr in dashboard_queries():
        assert metric_names(expr), f"{title}: {expr} selects no metric"
        assert 'node=~"$node"' in expr, f"{title}: {expr} ignores the node picker"
    titles = " ".join(title for title, _ in dashboard_queries()).lower()
    for topic in ("joins", "sessions", "packets", "errors", "webhook", "wait", "first frame", "cpu", "memory", "file"):
        assert topic in titles, f"no panel about {topic}"


async def test_every_query_uses_exposed_metrics_and_promtool_accepts_both(redis_db_url: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package (scripts/install-system-deps)")
    async with scaled_cluster(redis_db_url, tmp_path) as cluster:
        signaling = await scrape(cluster.server.url + "/metrics")
        worker = await scrape(cluster.worker_metrics_url)
    for name, text in (("signaling", signaling), ("media worker", worker)):
        checked = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        problems = (checked.stdout + checked.stderr).decode()
        assert checked.returncode == 0 and not problems.strip(), f"promtool on the {name}'s /metrics:\n{problems}"
    exposed = {"signaling": exposed_names(signaling), "media worker": exposed_names(worker)}
    missing = []
    for title, expr in dashboard_queries():
        for metric in metric_names(expr):
            # Media metrics come from workers, process metrics from every process, the rest from signaling.
            where = ["media worker"] if metric.startswith("vitrine_media_") else ["signaling"]
            if metric.startswith(("process_", "python_")):
                where = ["signaling", "media worker"]
            missing += [f"{title}: {metric} (not on the {w})" for w in where if metric not in exposed[w]]
    assert not missing, "\n".join(missing)
