"""Every query of the Grafana dashboards in deploy/grafana/dashboards, runnable as-is.

Grafana expands macros and variables before it sends a query; `panel_queries` does the
same with concrete values, so tests can run each panel's query against the real
Prometheus and ClickHouse and catch a dashboard that would show "no data" or an error.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
KINDS = {"prometheus": "prometheus", "grafana-clickhouse-datasource": "clickhouse"}


class DashboardError(ValueError):
    pass


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # dashboard uid
    panel: str  # panel title
    datasource_kind: str  # "prometheus" or "clickhouse"
    query: str  # PromQL or ClickHouse SQL with every macro and variable expanded
    ref_id: str = "A"
    instant: bool = False  # Prometheus: run as an instant query rather than a range


def _regex_escape(value: str) -> str:
    """Escape like Grafana's `:regex` format (RE2 metacharacters)."""
    return re.sub(r"([\\.^$*+?()\[\]{}|/])", r"\\\1", value)


def _variable_values(dashboard: dict, overrides: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """name -> (value, is_all). Unset variables take their All value (`.*`)."""
    out: dict[str, tuple[str, bool]] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        name = var.get("name")
        if name in overrides:
            out[name] = (overrides[name], False)
        else:
            out[name] = (var.get("allValue") or ".*", True)
    for name, value in overrides.items():
        out.setdefault(name, (value, False))
    return out


def expand(query: str, *, kind: str, time_from: int, time_to: int, interval_s: int,
           variables: dict[str, tuple[str, bool]]) -> str:
    """Expand Grafana macros ($__timeFilter, $__interval, …) and $variables to literals."""
    rng = max(1, time_to - time_from)
    if kind == "clickhouse":
        query = re.sub(r"\$__timeFilter\(\s*([\w.]+)\s*\)",
                       lambda m: f"{m.group(1)} >= toDateTime({time_from}) AND {m.group(1)} <= toDateTime({time_to})",
                       query)
        query = query.replace("$__fromTime", f"toDateTime({time_from})").replace("$__toTime", f"toDateTime({time_to})")
    query = query.replace("$__interval_ms", str(interval_s * 1000)).replace("$__interval_s", str(interval_s))
    query = query.replace("$__rate_interval", f"{max(4, interval_s * 2)}s").replace("$__interval", f"{interval_s}s")
    query = query.replace("$__range_s", str(rng)).replace("$__range", f"{rng}s")

    def var(m: re.Match) -> str:
        name, fmt = m.group(1) or m.group(3), m.group(2)
        if name not in variables:
            return m.group(0)
        value, is_all = variables[name]
        if fmt == "regex" and not is_all:
            return _regex_escape(value)
        return value

    query = re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)\b", var, query)
    leftover = re.search(r"\$\{?\w+", query)
    if leftover:
        raise DashboardError(f"unexpanded Grafana variable or macro {leftover.group(0)!r} in: {query[:120]}")
    return query


def _target_query(target: dict) -> str | None:
    return target.get("expr") or target.get("rawSql")


def panel_queries(dashboard_dir: str | Path = DASHBOARD_DIR, *, time_from: int | None = None,
                  time_to: int | None = None, interval_s: int = 60,
                  variables: dict[str, str] | None = None) -> list[PanelQuery]:
    """All panel queries of all dashboards in `dashboard_dir`, ready to run.

    Time range defaults to the last 6 hours; `variables` sets $brand etc. (default: All).
    """
    time_to = int(time.time()) if time_to is None else time_to
    time_from = time_to - 6 * 3600 if time_from is None else time_from
    out: list[PanelQuery] = []
    for path in sorted(Path(dashboard_dir).glob("*.json")):
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DashboardError(f"{path.name}: not valid JSON: {exc}") from None
        values = _variable_values(dashboard, variables or {})
        for panel in iter_panels(dashboard):
            for target in panel.get("targets", []):
                query = _target_query(target)
                if not query:
                    continue
                ds = target.get("datasource") or panel.get("datasource") or {}
                kind = KINDS.get(ds.get("type", ""))
                if kind is None:
                    raise DashboardError(f"{path.name}: panel {panel.get('title')!r} has unknown datasource {ds!r}")
                out.append(PanelQuery(
                    dashboard=dashboard.get("uid", path.stem), panel=panel.get("title", ""), datasource_kind=kind,
                    query=expand(query, kind=kind, time_from=time_from, time_to=time_to, interval_s=interval_s,
                                 variables=values),
                    ref_id=target.get("refId", "A"), instant=bool(target.get("instant"))))
    return out


def iter_panels(dashboard: dict):
    """Panels, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])
