"""Incident records in ClickHouse (issue #22): rows from the incident stage, a close with no
window, old key-level records next to them, against the real (18.16) server."""
from __future__ import annotations

import json

import pytest

from scoring.incidents import IncidentState, on_key_alert, on_time
from core.times import format_ms
from sinks.clickhouse.rows import COLUMNS, RowError, alert_row
from sinks.clickhouse.writer import ClickHouseWriter

from ch_helpers import count

T0 = 1_764_032_400_000  # 2025-11-25T01:00:00Z
MIN = 60_000


def key(event, category, level, at_ms, previous="low"):
    return {"alert_id": f"k-{category}-{at_ms}", "event": event, "brand": "星云支付", "category": category,
            "level": level, "previous_level": previous, "at": format_ms(at_ms), "first_detected_at": format_ms(at_ms),
            "window_start": format_ms(at_ms - 10 * MIN), "window_end": format_ms(at_ms), "posts": 12,
            "risk_score": 0.5, "examples": [{"text": "星云支付泄露隐私[怒]"}],
            "playbook": {"title": "隐私预案", "owner": "公关"},
            "deadlines": [{"name": "首次回应", "due_at": format_ms(at_ms + 3_600_000), "hours_after_detection": 1.0}]}


def incident_records():
    state, out = IncidentState(), []
    for r in (key("raised", "privacy", "medium", T0), key("raised", "legal", "high", T0 + 5 * MIN),
              key("lowered", "legal", "low", T0 + 60 * MIN, "high"), key("lowered", "privacy", "low", T0 + 61 * MIN, "medium")):
        state, got = on_key_alert(state, r)
        out.extend(got)
    return out + on_time(state, T0 + 5 * 3_600_000)[1]


def test_incident_rows_carry_the_incident_and_a_close_needs_no_window():
    rows = [dict(zip(COLUMNS["alerts"], alert_row(r))) for r in incident_records()]
    assert [r["kind"] for r in rows] == ["opened", "escalated", "lowered", "lowered", "closed"]
    assert len({r["alert_id"] for r in rows}) == 1 and all(r["incident_id"] == r["alert_id"] for r in rows)
    assert rows[0]["key_alert_id"] == f"k-privacy-{T0}" and rows[-1]["key_alert_id"] == ""
    assert rows[-1]["event"] == "closed" and rows[-1]["window_start"] == rows[-1]["at"] and rows[-1]["posts"] == 0
    assert json.loads(rows[1]["categories"]) == [{"category": "privacy", "level": "medium"},
                                                 {"category": "legal", "level": "high"}]
    assert rows[1]["incident_level"] == "high"
    old = dict(zip(COLUMNS["alerts"], alert_row(key("raised", "privacy", "high", T0))))
    assert (old["incident_id"], old["kind"], old["categories"]) == ("", "", "[]")


@pytest.mark.parametrize("change, reason", [({"kind": "reopened"}, "kind"), ({"event": "closed"}, "closed"),
                                            ({"categories": "privacy"}, "categories")])
def test_bad_incident_fields_are_refused_with_a_reason(change, reason):
    with pytest.raises(RowError, match=reason):
        alert_row({**key("raised", "privacy", "high", T0), **change})


def test_incident_rows_and_old_rows_land_in_the_migrated_table(migrated_db):
    writer = ClickHouseWriter(migrated_db.clickhouse).connect()
    try:
        records = incident_records()
        writer.insert("alerts", [alert_row(r) for r in records] + [alert_row(key("raised", "refund", "high", T0))])
    finally:
        writer.close()
    assert count(migrated_db, "SELECT uniqExact(incident_id) FROM alerts WHERE incident_id != ''") == 1
    assert count(migrated_db, "SELECT count() FROM alerts WHERE kind = 'closed' AND event = 'closed'") == 1
    assert count(migrated_db, "SELECT count() FROM alerts WHERE kind = '' AND incident_id = ''") == 1
    assert count(migrated_db, "SELECT toString(max(incident_level)) FROM alerts WHERE incident_id != ''") == "high"
