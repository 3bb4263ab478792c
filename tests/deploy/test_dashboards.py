"""Grafana dashboards and provisioning: parse, every panel queries a known datasource, uids unique."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sinks.dashboards import DashboardError, expand, iter_panels, panel_queries

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def test_dashboards_parse_with_unique_uids_and_panel_ids():
    assert len(DASHBOARDS) >= 2
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    datasource_uids = {d["uid"] for d in yaml.safe_load((GRAFANA / "provisioning/datasources/yuqing.yaml").read_text())["datasources"]}
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        panels = list(iter_panels(dash))
        assert len({p["id"] for p in panels}) == len(panels), path.name
        for panel in panels:
            assert panel.get("datasource", {}).get("uid") in datasource_uids, (path.name, panel["title"])
            assert panel["targets"] and all(t.get("expr") or t.get("rawSql") for t in panel["targets"]), panel["title"]
            for t in panel["targets"]:
                assert t["datasource"]["uid"] in datasource_uids


def test_panel_queries_expand_every_macro_and_variable():
    queries = panel_queries(GRAFANA / "dashboards", time_from=1_764_000_000, time_to=1_764_003_600,
                            variables={"brand": "快送.pro"})
    kinds = {q.datasource_kind for q in queries}
    assert kinds == {"prometheus", "clickhouse"}
    n_targets = sum(len(p["targets"]) for d in DASHBOARDS for p in iter_panels(json.loads(d.read_text())))
    assert len(queries) == n_targets
    for q in queries:
        assert "$" not in q.query.replace(")$'", ""), q.query
    trend = next(q for q in queries if q.datasource_kind == "clickhouse" and "risk_assessments" in q.query)
    assert "window_end >= toDateTime(1764000000) AND window_end <= toDateTime(1764003600)" in trend.query
    assert "match(brand, '^(快送\\.pro)$')" in trend.query and "match(category, '^(.*)$')" in trend.query
    assert "WITH " not in trend.query.upper() and " OVER " not in trend.query.upper()  # ClickHouse 18.16


def test_expand_refuses_unknown_variables():
    with pytest.raises(DashboardError, match=r"\$region"):
        expand('x{region="$region"}', kind="prometheus", time_from=0, time_to=60, interval_s=1, variables={})
