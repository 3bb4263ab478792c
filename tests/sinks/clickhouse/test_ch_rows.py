"""Record -> row conversions (pure)."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from sinks.clickhouse import rows
from sinks.clickhouse.rows import COLUMNS, RowError


def scored(**over):
    rec = {
        "id": "weibo:1", "platform": "Weibo", "text": "快送又崩了", "title": None, "url": None,
        "lang": "zh", "published_at": "2026-11-25T10:00:00+08:00",
        "ingested_at": "2026-11-25T02:00:05Z", "author_id": "u1", "author_name": "n",
        "author_kind": "kol", "followers": 1200, "verified": True, "reposts": 1, "comments": 2,
        "likes": 3, "views": 4, "repost_of": None, "source": "api", "sentiment": 0.1,
        "negative": True, "brands": ["快送"], "categories": ["outage"],
        "matches": [{"brand": "快送", "category": "outage"}],
    }
    rec.update(over)
    return rec


def test_post_row_columns_and_values():
    row = dict(zip(COLUMNS["posts"], rows.post_row(scored())))
    assert len(row) == len(COLUMNS["posts"])
    assert row["platform"] == "weibo"
    assert row["verified"] == 1 and row["negative"] == 1
    assert row["match_brands"] == ["快送"] and row["match_categories"] == ["outage"]
    assert row["published_at"] == datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    assert row["author_kind"] == "kol"


def test_post_row_without_matches_pairs_every_brand_with_every_category():
    row = dict(zip(COLUMNS["posts"], rows.post_row(scored(matches=None, brands=["a", "b"], categories=[]))))
    assert row["match_brands"] == ["a", "b"] and row["match_categories"] == ["general", "general"]


@pytest.mark.parametrize("over,reason", [
    ({"id": None, "text": None}, r"missing required field\(s\): id, text"),
    ({"published_at": "yesterday"}, "published_at: not an RFC 3339"),
    ({"published_at": "1960-01-01T00:00:00+00:00"}, "outside ClickHouse DateTime range"),
    ({"sentiment": 1.5}, "sentiment: 1.5 is outside 0..1"),
    ({"negative": "yes"}, "negative: expected a boolean"),
    ({"author_kind": "bot"}, "author_kind: expected one of"),
    ({"followers": -3}, "followers: -3 is outside"),
    ({"brands": "快送"}, "brands: expected a list of strings"),
])
def test_post_row_reasons(over, reason):
    with pytest.raises(RowError, match=reason):
        rows.post_row(scored(**over))


ODD_VALUES = [None, "", " ", 0, -1, 2**64, 1.5, float("nan"), True, False, [], ["x"], {}, "x", 7,
              "2026-11-25T10:00:00Z", " 2026-11-25T10:00:00+08:00", "2026-11-25T10:00:00", "user",
              [{"brand": "b"}], [{"brand": 1}], [{"brand": "b", "category": 2}], ["a", 1]]


def _outcome(fn, rec):
    try:
        return "row", fn(rec)
    except RowError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("field", sorted(scored()) + ["extra"])
def test_post_row_fast_path_agrees_with_the_checked_path(field):
    """The one-pass path for what the job writes must give the checked path's row, or
    leave the record to it (and so its reason), whatever a field holds."""
    for value in ODD_VALUES:
        rec = scored(**{field: value})
        fast, checked = _outcome(rows.post_row, rec), _outcome(rows._post_row_checked, rec)
        if field == "ingested_at" and value is None:  # both stamp "now", microseconds apart
            assert fast[0] == checked[0] == "row" and fast[1][:-1] == checked[1][:-1]
        else:
            assert fast == checked, (field, value)
    assert rows._post_row_plain(scored()) == rows._post_row_checked(scored())


def test_assessment_and_alert_rows():
    a = {"brand": "快送", "category": "privacy", "window_start": "2026-11-25T10:00:00+08:00",
         "window_end": "2026-11-25T11:00:00+08:00", "posts": 12, "negative_ratio": 0.75,
         "influence": 0.5, "severity": 0.9, "volatility": 0.3, "risk_score": 0.7, "level": "high"}
    row = dict(zip(COLUMNS["risk_assessments"], rows.assessment_row(a)))
    assert row["level"] == "high" and row["first_detected_at"] is None and row["posts"] == 12
    with pytest.raises(RowError, match="level: expected one of low, medium, high"):
        rows.assessment_row({**a, "level": "severe"})
    alert = {**a, "alert_id": "x1", "event": "raised", "previous_level": "medium",
             "at": "2026-11-25T11:00:00+08:00", "first_detected_at": "2026-11-25T10:30:00+08:00",
             "examples": [{"id": "weibo:1", "text": "t"}],
             "playbook": {"level": "high", "title": "T", "owner": "PR", "steps": ["s"]},
             "deadlines": [{"name": "b", "due_at": "2026-11-25T14:30:00+08:00", "hours_after_detection": 4},
                           {"name": "a", "due_at": "2026-11-25T12:30:00+08:00", "hours_after_detection": 2}]}
    row = dict(zip(COLUMNS["alerts"], rows.alert_row(alert)))
    assert row["playbook_owner"] == "PR"
    assert row["first_deadline_at"] == datetime(2026, 11, 25, 12, 30, tzinfo=timezone(timedelta(hours=8)))
    assert json.loads(row["deadlines"])[0]["name"] == "b"


def test_dlq_row_accepts_raw_hex_and_ids_are_stable():
    raw = b"\xff\xfe{"
    rec = {"reason": "invalid UTF-8 at byte 0", "raw": raw.decode("utf-8", "replace"), "raw_hex": raw.hex(),
           "source": "file", "rejected_at": "2026-11-25T10:00:00+08:00"}
    row = dict(zip(COLUMNS["rejects"], rows.dlq_row(rec)))
    assert base64.b64decode(row["raw_b64"]) == raw
    assert row["stage"] == "unknown" and row["kafka_offset"] is None
    later = dict(zip(COLUMNS["rejects"], rows.dlq_row({**rec, "rejected_at": "2026-11-26T10:00:00+08:00"})))
    assert later["reject_id"] == row["reject_id"]  # same bad record again is the same reject
    other = dict(zip(COLUMNS["rejects"], rows.dlq_row({**rec, "reason": "other"})))
    assert other["reject_id"] != row["reject_id"]


def test_decode_json_reasons():
    with pytest.raises(RowError, match="invalid JSON"):
        rows.decode_json(b"{nope")
    with pytest.raises(RowError, match="not a JSON object"):
        rows.decode_json(b"[1]")
    with pytest.raises(RowError, match="invalid UTF-8"):
        rows.decode_json(b"\xff")


def test_sink_reject_row_keeps_bytes_and_position():
    row = dict(zip(COLUMNS["rejects"], rows.sink_reject_row("bad", b"\x00abc", "posts.scored", 2, 41)))
    assert base64.b64decode(row["raw_b64"]) == b"\x00abc"
    assert (row["stage"], row["topic"], row["kafka_partition"], row["kafka_offset"]) == ("sink", "posts.scored", 2, 41)
