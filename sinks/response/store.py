"""ClickHouse access for the response tools: alerts, their actions, recording actions.

Reads go through sinks.clickhouse.client.connect (timeouts set there); writes through
ClickHouseWriter (retries, `INSERT … VALUES` with rows, never inline values). Queries are
plain 18.16 SQL (no CTEs, no window functions).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sinks.clickhouse.client import connect
from sinks.clickhouse.writer import ClickHouseWriter
from core.config import ClickHouseSettings

from .clock import Action, Clock, Deadline, clock_from

# The driver logs a traceback for every refused connection; the commands report one line.
logging.getLogger("clickhouse_driver").addHandler(logging.NullHandler())

REMINDED = "reminded"  # the action value added by migration 0100_response_clock.sql

_ALERT_COLUMNS = (
    "alert_id", "event", "brand", "category", "level", "previous_level", "at", "first_detected_at",
    "window_start", "window_end", "posts", "negative_ratio", "influence", "severity", "volatility",
    "risk_score", "examples", "playbook", "deadlines",
    "incident_id", "kind", "incident_level", "categories",  # migration 0101_incidents.sql
)
PAGE_KINDS = ("opened", "escalated")  # an incident's pages (scoring/incidents.py)


def _utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.astimezone(timezone.utc)


def _epoch(ts: datetime) -> int:
    """Times go to the server as epoch seconds: a datetime parameter would be sent without
    its offset and read in the column's time zone (Asia/Shanghai)."""
    return int(ts.timestamp())


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else _utc(ts).isoformat(timespec="seconds")


def _load_json(text: str, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def row_to_alert(row: tuple) -> dict[str, Any]:
    """An `alerts` table row (in _ALERT_COLUMNS order) -> the `alerts` record shape."""
    d = dict(zip(_ALERT_COLUMNS, row))
    for key in ("at", "first_detected_at", "window_start", "window_end"):
        d[key] = _iso(d[key])
    for key in ("negative_ratio", "influence", "severity", "volatility", "risk_score"):
        d[key] = round(float(d[key]), 4)
    d["examples"] = _load_json(d["examples"], [])
    d["playbook"] = _load_json(d["playbook"], {})
    d["deadlines"] = _load_json(d["deadlines"], [])
    if d["incident_id"]:
        d["categories"] = _load_json(d["categories"], [])
    else:  # a record from before incidents: as it was written
        for key in ("incident_id", "kind", "incident_level", "categories"):
            d.pop(key)
    return d


class ResponseStore:
    """Lookups and writes for one ClickHouse database."""

    def __init__(self, ch: ClickHouseSettings):
        self.ch = ch
        self.db = ch.database
        self._client = None
        self._writer: ClickHouseWriter | None = None

    def _c(self):
        if self._client is None:
            self._client = connect(self.ch, database=self.db)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "ResponseStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- alerts ---------------------------------------------------------------------
    def alert(self, alert_id: str) -> dict[str, Any] | None:
        """The alert's latest event (by event time), with `top_level` over all its events."""
        rows = self._c().execute(
            f"SELECT {', '.join(_ALERT_COLUMNS)} FROM {self.db}.alerts FINAL "
            "WHERE alert_id = %(id)s ORDER BY at DESC, inserted_at DESC", {"id": alert_id})
        if not rows:
            return None
        # an incident: its latest page (deadlines and playbook of the level that paged), not
        # a later update of one of its keys
        kind_at = _ALERT_COLUMNS.index("kind")
        alert = row_to_alert(next((r for r in rows if r[kind_at] in PAGE_KINDS), rows[0]))
        levels = [r[_ALERT_COLUMNS.index("level")] for r in rows]
        alert["top_level"] = max(levels, key=("low", "medium", "high").index)
        return alert

    def open_alert_ids(self, since: datetime) -> list[str]:
        """Alerts first detected since `since` whose latest event is above low and that
        nobody resolved."""
        rows = self._c().execute(
            f"SELECT alert_id, argMax(level, at) AS last_level, argMax(toString(kind), at) AS last_kind "
            f"FROM {self.db}.alerts "
            "WHERE first_detected_at >= toDateTime(%(since)s) GROUP BY alert_id "
            # an incident is open until its close; an alert from before incidents until it fell to low
            "HAVING ((last_kind = '' AND last_level != 'low') OR last_kind NOT IN ('', 'closed')) "
            f"AND alert_id NOT IN (SELECT alert_id FROM {self.db}.alert_actions WHERE action = 'resolved') "
            "ORDER BY alert_id", {"since": _epoch(since)})
        return [r[0] for r in rows]

    def platform_posts(self, brand: str, category: str, since: datetime, until: datetime) -> dict[str, int]:
        """Posts per platform for the key in [since, until] (the alert's spread)."""
        rows = self._c().execute(
            f"SELECT platform, count() AS n FROM {self.db}.posts "
            "ARRAY JOIN match_brands AS b, match_categories AS c "
            "WHERE b = %(brand)s AND c = %(category)s "
            "AND published_at >= toDateTime(%(since)s) AND published_at <= toDateTime(%(until)s) "
            "GROUP BY platform ORDER BY n DESC, platform",
            {"brand": brand, "category": category,
             "since": _epoch(since), "until": _epoch(until)})
        return {p: int(n) for p, n in rows}

    def enriched_alert(self, alert_id: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The alert plus `platforms` and `total_posts` since detection (from `posts`)."""
        alert = self.alert(alert_id)
        if alert is None:
            return None
        detected = datetime.fromisoformat(alert["first_detected_at"])
        start = datetime.fromisoformat(alert["window_start"]) if alert.get("window_start") else detected
        until = now or datetime.now(timezone.utc)
        platforms = self.platform_posts(alert["brand"], alert["category"], min(start, detected), until)
        if platforms:
            alert["platforms"] = platforms
            alert["total_posts"] = sum(platforms.values())
        return alert

    # -- actions --------------------------------------------------------------------
    def actions(self, alert_ids: Iterable[str]) -> list[Action]:
        ids = tuple(alert_ids)
        if not ids:
            return []
        rows = self._c().execute(
            f"SELECT alert_id, toString(action), actor, at, note FROM {self.db}.alert_actions FINAL "
            "WHERE alert_id IN %(ids)s ORDER BY at", {"ids": ids})
        return [Action(a, act, actor, _utc(at), note) for a, act, actor, at, note in rows]

    def clock(self, alert: dict[str, Any]) -> Clock:
        return clock_for(alert, self.actions([alert["alert_id"]]))

    def record(self, alert_id: str, action: str, actor: str, at: datetime, note: str = "") -> None:
        """Append one action (acked/resolved/reminded/…) to `alert_actions`."""
        if self._writer is None:
            self._writer = ClickHouseWriter(self.ch, max_attempts=3)
        if action == REMINDED:  # not in rows.ALERT_ACTIONS; the enum value comes from migration 0100
            report = self._writer.insert("alert_actions", [(alert_id, action, actor, at, note)])
        else:
            self._writer.record_action(alert_id, action, actor, at, note)
            return
        if report.refused:
            raise RuntimeError(f"ClickHouse refused the action row: {report.refused[0][1]} "
                               "(is migration 0100_response_clock applied? run `yuqing db migrate`)")


def deadlines_of(alert: dict[str, Any]) -> list[Deadline]:
    """The alert's deadlines; from the record, or from playbooks.yaml for its level."""
    detected = datetime.fromisoformat(str(alert["first_detected_at"]).replace("Z", "+00:00"))
    out = []
    for d in alert.get("deadlines") or []:
        if isinstance(d, dict) and d.get("name") and d.get("due_at"):
            due = datetime.fromisoformat(str(d["due_at"]).replace("Z", "+00:00"))
            hours = d.get("hours_after_detection")
            out.append(Deadline(str(d["name"]), due, float(hours) if isinstance(hours, (int, float))
                                else (due - detected).total_seconds() / 3600))
    if not out:
        from core.levels import load_playbooks

        level = alert.get("top_level") or alert.get("level") or "medium"
        pb = load_playbooks()[level]
        out = [Deadline(d.name, detected + timedelta(hours=d.hours), d.hours) for d in pb.deadlines]
    return sorted(out, key=lambda d: d.hours)


def clock_for(alert: dict[str, Any], actions: Iterable[Action]) -> Clock:
    detected = datetime.fromisoformat(str(alert["first_detected_at"]).replace("Z", "+00:00"))
    return clock_from(alert["alert_id"], detected, deadlines_of(alert), actions)
