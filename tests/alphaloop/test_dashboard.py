"""The Grafana dashboard asks only for series the exporter exposes.

Every PromQL expression of ``dashboards/alphaloop.json`` (panel targets and template-variable
queries) is reduced to the metric names it reads (strings, label matchers, ranges, grouping
clauses, functions and keywords removed), and each must be a sample name the collector
declares (:data:`alphaloop.metrics.METRICS`: a gauge's name, a counter's ``_total``) and that
a scrape of a full lab home (pause and stress result planted) really carries. A control shows
a planted unknown name is caught.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alphaloop.home import LabHome
from alphaloop.metrics import METRICS, LabCollector
from arena.kill_switch import pause_lab

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "alphaloop.json"
PROVISIONING = ROOT / "dashboards" / "provisioning"

# PromQL words that are not metric names: aggregations, functions without their "(" (they
# are removed with it below), modifiers and set operators.
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_FUNCTION = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(")
_NAME = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression reads."""
    text = _STRING.sub(" ", expr)
    text = _VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _FUNCTION.sub("(", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", " ", text, flags=re.IGNORECASE)
    return {name for name in _NAME.findall(text) if name.lower() not in _KEYWORDS}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ``(where, PromQL)`` of every panel target and template-variable query."""
    out: list[tuple[str, str]] = []
    for panel in _walk(dashboard.get("panels", [])):
        for target in panel.get("targets", []) if "targets" in panel else []:
            out.append((f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        inner = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text)
        out.append((f"variable {variable['name']!r}", inner.group(1) if inner else text))
    return out


def exposed_sample_names() -> set[str]:
    """Return the sample names the collector declares (a counter's is ``<name>_total``)."""
    return {
        f"{name}_total" if kind == "counter" else name for name, (kind, _, _) in METRICS.items()
    }


def unknown_names(dashboard: dict[str, Any], known: set[str]) -> list[str]:
    """Return ``where: name`` for every name a query reads that ``known`` lacks."""
    return [
        f"{where}: {name}"
        for where, expr in dashboard_queries(dashboard)
        for name in sorted(metric_names(expr) - known)
    ]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'sum by (account, rule) (increase(alphaloop_risk_events_total{account=~"$account",'
        ' rule!="x y"}[1d])) / on (account) group_left clamp_min(alphaloop_orders_total, 1)'
        " - 1e-4 * time() + alphaloop_up offset 5m > bool 0.5"
    )
    assert metric_names(expr) == {
        "alphaloop_risk_events_total", "alphaloop_orders_total", "alphaloop_up"
    }  # fmt: skip


def test_every_dashboard_query_reads_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 20
    assert unknown_names(dashboard, exposed_sample_names()) == []
    read = set().union(*(metric_names(expr) for _, expr in queries))
    # The dashboard covers what the issue asks for (each section reads its series).
    for name in (
        "alphaloop_account_equity", "alphaloop_account_drawdown_ratio",
        "alphaloop_account_daily_pnl", "alphaloop_regime", "alphaloop_risk_events_total",
        "alphaloop_execution_shortfall_ratio", "alphaloop_paper_backtest_divergence_ratio",
        "alphaloop_pool_genomes", "alphaloop_generation_best_score", "alphaloop_up",
    ):  # fmt: skip
        assert name in read, name


def test_control_a_planted_unknown_metric_is_caught(dashboard: dict[str, Any]) -> None:
    planted = json.loads(json.dumps(dashboard))
    panel = next(p for p in _walk(planted["panels"]) if p.get("targets"))
    panel["targets"][0]["expr"] = 'sum by (account) (alphaloop_account_equty{account=~"$account"})'
    found = unknown_names(planted, exposed_sample_names())
    assert found == [f"panel {panel['title']!r} A: alphaloop_account_equty"]
    variable = planted["templating"]["list"][1]
    variable["query"]["query"] = "label_values(alphaloop_accounts, account)"
    found = unknown_names(planted, exposed_sample_names())
    assert "variable 'account': alphaloop_accounts" in found, found


def test_every_dashboard_metric_is_in_a_real_scrape(
    dashboard: dict[str, Any], ops_home: LabHome
) -> None:
    pause_lab(ops_home, reason="dashboard test")
    folder = ops_home.stress / "2023-06-01"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(
        json.dumps({"passed": True, "scenarios": [{"name": "crash-2015", "passed": True}]}),
        encoding="utf-8",
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LabCollector(ops_home))
    scraped = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert unknown_names(dashboard, scraped) == []


def test_panels_have_ids_positions_and_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == "alphaloop-prometheus"


def test_provisioning_files_point_at_the_dashboard_and_the_data_source() -> None:
    providers = yaml.safe_load((PROVISIONING / "dashboards.yaml").read_text(encoding="utf-8"))
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    sources = yaml.safe_load((PROVISIONING / "datasources.yaml").read_text(encoding="utf-8"))
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "alphaloop-prometheus"
    scrape = yaml.safe_load((ROOT / "dashboards" / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = scrape["scrape_configs"]
    from alphaloop.serve import DEFAULT_HOST, DEFAULT_PORT

    assert job["static_configs"][0]["targets"] == [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]
