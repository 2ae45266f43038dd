"""deploy/grafana: every dashboard is well-formed Grafana JSON on the Prometheus datasource,
and every metric any of its expressions names is one a live server exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import GQL, LiveServer

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED = {"api", "executions", "realtime", "llm", "memory-search", "notifications", "system"}
# Series Prometheus itself adds to every scrape target; nothing else outside our prefix.
PROMETHEUS_SERIES = {"up"}

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings, label
    matchers, ranges and grouping clauses are removed, that no ``(`` follows (functions,
    aggregations) and that are no keyword."""
    bare = _STRING.sub('""', expr)
    bare = _MATCHERS.sub(" ", bare)
    bare = _RANGE.sub(" ", bare)
    bare = _GROUPING.sub(" ", bare)
    return {n for n in _IDENTIFIER.findall(bare) if n.lower() not in _KEYWORDS}


def test_metric_names_parses_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(cognitionos_a_bucket{status=~"5.."'
        ', x="up"}[$__rate_interval]))) / on (instance) group_left up{job="w"} * 60'
        " + sum without (le) (cognitionos_b) offset 5m"
    )
    assert metric_names(expr) == {"cognitionos_a_bucket", "up", "cognitionos_b"}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def expressions() -> list[tuple[str, str, str]]:
    """(file, panel title, expr) of every query of every dashboard."""
    found = []
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def exported_series(text: str) -> set[str]:
    """Every series name the scrape has or would have: a family declared by ``# TYPE``
    exports its histogram/counter series even before its first labelled sample."""
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalnum()}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        if kind == "histogram":
            names |= {f"{family}_bucket", f"{family}_count", f"{family}_sum"}
        elif kind == "counter":  # declared with or without _total, by client version
            names |= {family, f"{family.removesuffix('_total')}_total"}
        else:
            names.add(family)
    return names


def test_dashboards_are_grafana_json_on_the_prometheus_datasource() -> None:
    assert {p.stem for p in DASHBOARDS} == EXPECTED
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["schemaVersion"] >= 36, path.name
        assert dashboard["uid"] not in uids and len(dashboard["uid"]) <= 40, path.name
        uids.add(dashboard["uid"])
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["DS_PROMETHEUS"]["type"] == "datasource"
        assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["targets"], (path.name, panel["title"])
            for target in [panel, *panel["targets"]]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    assert datasource["type"] == "prometheus" and datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "cognitionos.yaml").read_text()
    )["providers"]
    assert provider["type"] == "file"
    # deploy/compose.yaml mounts deploy/grafana/dashboards there.
    compose = yaml.safe_load((GRAFANA.parent / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


@pytest.mark.timeout(120)
def test_every_dashboard_metric_is_exported(server: LiveServer, gql: GQL) -> None:
    gql.post("{ me { id } }")  # a labelled GraphQL and HTTP series, an auth result
    gql.post("{ health { status } }")
    response = server.gql.client.get(f"{server.url}/metrics")
    assert response.status_code == 200
    exported = exported_series(response.text)
    assert "cognitionos_graphql_operations_total" in exported

    used: dict[str, list[str]] = {}
    for file, title, expr in expressions():
        for name in metric_names(expr):
            used.setdefault(name, []).append(f"{file}: {title}")
    ours = {n for n in used if n.startswith("cognitionos_")}
    assert len(ours) >= 20, sorted(ours)
    missing = {n: used[n] for n in ours - exported}
    assert not missing, missing
    foreign = {n: used[n] for n in set(used) - ours - PROMETHEUS_SERIES}
    assert not foreign, foreign
    # And the other way round: every family is charted somewhere (a new metric gets a panel).
    families = {
        f.removesuffix("_total")
        for f in re.findall(r"^# TYPE (\S+) ", response.text, re.M)
        if not f.endswith("_created")
    }
    charted = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in ours}
    assert families <= charted, families - charted
