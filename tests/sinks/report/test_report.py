"""The weekly report, built from rows written into the REAL ClickHouse test stack.

Posts come from yuqing/synth.py (seeded), scored with their ground-truth labels; alerts
are real AlertEvent records; the response clock is written by the response store. The
expected numbers are computed here from the same rows, independently of the SQL.
"""
from __future__ import annotations

import argparse
import collections
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from png_reader import read_png  # noqa: E402

from scoring.alerts import AlertEvent
from core.levels import load_playbooks
from scoring.watchlist import load_watchlist
from sinks.clickhouse.rows import alert_row, post_row
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.report import cli as report_cli
from sinks.report.data import Period, as_dict, load_report
from sinks.report.render import render_html, render_markdown
from sinks.response.store import ResponseStore
from yuqing import synth

REPO = Path(__file__).resolve().parents[3]
CST = timezone(timedelta(hours=8))
WEEK = (date(2026, 11, 16), date(2026, 11, 22))


def scored(post: dict) -> dict:
    """A synth post as a `posts.scored` record, labelled by its ground truth."""
    truth = post["synth"]
    category = truth["category"] or "general"
    author = post["author"]
    metrics = post.get("metrics") or {}
    negative = truth["label"] == 0
    return {
        "id": post["id"], "platform": post["platform"], "text": post["text"], "title": post.get("title"),
        "url": post.get("url"), "lang": "zh", "published_at": post["published_at"],
        "author_id": author["id"], "author_name": author["name"], "author_kind": author["kind"],
        "followers": author["followers"], "verified": author["verified"],
        "reposts": metrics.get("reposts", 0), "comments": metrics.get("comments", 0),
        "likes": metrics.get("likes", 0), "views": metrics.get("views", 0),
        "sentiment": 0.15 if negative else 0.8, "negative": negative,
        "brands": [truth["brand"]], "categories": [] if category == "general" else [category],
        "matches": [{"brand": truth["brand"], "category": category}],
    }


def alert(brand, category, level, detected: datetime, posts: int) -> dict:
    pb = load_playbooks()[level]
    ms = int(detected.timestamp() * 1000)
    return AlertEvent("raised", brand, category, level, "low", ms, ms, ms - 600_000, ms, posts, 0.7, 0.6, 0.8,
                      0.7, 0.72, ({"id": "x:1", "text": "示例帖子", "platform": "weibo", "author": "a", "url": ""},),
                      pb).to_dict()


@pytest.fixture
def week_data(report_db):
    wl = load_watchlist(REPO / "data" / "watchlist.sample.yaml")
    start = datetime(2026, 11, 16, 0, 0, tzinfo=CST)
    scenarios = [
        synth.calm_chatter("快送", start, minutes=7 * 24 * 60, per_min=0.08),
        synth.calm_chatter("星云支付", start, minutes=7 * 24 * 60, per_min=0.05),
        synth.crisis("快送", "privacy", datetime(2026, 11, 19, 9, 0, tzinfo=CST), minutes=100, peak_per_min=12),
        synth.complaint_trickle("星云支付", "refund", datetime(2026, 11, 20, 8, 0, tzinfo=CST), minutes=240, per_min=0.5),
        # the week before: some outage talk, so `outage` falls and `privacy` rises
        synth.complaint_trickle("快送", "outage", datetime(2026, 11, 12, 8, 0, tzinfo=CST), minutes=300, per_min=0.4),
    ]
    posts = [scored(p) for p in synth.generate(scenarios, wl, seed=7)]
    privacy_at = datetime(2026, 11, 19, 9, 40, tzinfo=CST)
    refund_at = datetime(2026, 11, 20, 10, 0, tzinfo=CST)
    alerts = [alert("快送", "privacy", "medium", privacy_at, 40),
              {**alert("快送", "privacy", "high", privacy_at, 300), "at": "2026-11-19T02:05:00+00:00"},
              alert("星云支付", "refund", "medium", refund_at, 25),
              alert("快送", "outage", "medium", datetime(2026, 11, 12, 9, 0, tzinfo=CST), 20)]  # last week
    writer = ClickHouseWriter(report_db.clickhouse, max_attempts=3)
    try:
        rep = writer.insert("posts", [post_row(p) for p in posts])
        assert rep.inserted == len(posts) and not rep.refused
        rep = writer.insert("alerts", [alert_row(a) for a in alerts])
        assert rep.inserted == len(alerts) and not rep.refused
    finally:
        writer.close()
    with ResponseStore(report_db.clickhouse) as store:
        pid = alerts[0]["alert_id"]
        store.record(pid, "acked", "王敏", privacy_at + timedelta(minutes=50))  # within 2 h
        store.record(pid, "resolved", "王敏", privacy_at + timedelta(hours=14))  # 12 h deadline missed
    return report_db, posts, alerts


def test_report_numbers_match_the_rows(week_data):
    settings, posts, alerts = week_data
    period = Period.from_dates(*WEEK)
    with ResponseStore(settings.clickhouse) as store:
        data = load_report(store, period)
    got = as_dict(data)
    in_week = [p for p in posts if period.start <= datetime.fromisoformat(p["published_at"]) < period.end]
    want_posts = collections.Counter(p["brands"][0] for p in in_week)
    want_neg = collections.Counter(p["brands"][0] for p in in_week if p["negative"])
    assert got["posts"] == dict(want_posts) and sum(want_posts.values()) > 500
    assert got["negative"] == dict(want_neg)
    assert data.brands[0] == "快送"  # most posts first
    # alerts of the week only, one row per alert id (the two privacy events are one alert)
    by_id = {a["alert_id"]: a for a in got["alerts"]}
    assert set(by_id) == {alerts[0]["alert_id"], alerts[2]["alert_id"]}
    privacy = by_id[alerts[0]["alert_id"]]
    assert privacy["level"] == "high" and privacy["acked_by"] == "王敏"
    assert privacy["ack_seconds"] == 50 * 60 and privacy["ack_met"] is True
    assert privacy["resolve_seconds"] == 14 * 3600 and privacy["resolve_met"] is False
    refund = by_id[alerts[2]["alert_id"]]
    assert refund["acked_by"] is None and refund["ack_met"] is None
    # rising: privacy appeared this week; outage (last week only) is not rising
    rising = {(r["brand"], r["category"]) for r in got["rising"]}
    assert ("快送", "privacy") in rising and ("快送", "outage") not in rising
    outage = next(c for c in data.categories if c.category == "outage")
    assert outage.posts == 0 and outage.before == sum(
        1 for p in posts if p["matches"][0]["category"] == "outage")
    # top posts: at most 3 per brand and platform, sorted by engagement
    per = collections.defaultdict(list)
    for t in data.top_posts:
        per[(t.brand, t.platform)].append(t.engagement)
    assert per and all(len(v) <= 3 and v == sorted(v, reverse=True) for v in per.values())
    best = max((p for p in in_week if p["brands"] == ["快送"] and p["platform"] == "weibo"),
               key=lambda p: (p["reposts"] + p["comments"] + p["likes"]))
    assert per[("快送", "weibo")][0] == best["reposts"] + best["comments"] + best["likes"]
    assert all(s.posts >= 1 for s in data.spreaders)
    # brand filter
    with ResponseStore(settings.clickhouse) as store:
        only = as_dict(load_report(store, period, brand="星云支付"))
    assert only["brands"] == ["星云支付"] and [a["brand"] for a in only["alerts"]] == ["星云支付"]


def test_report_cli_writes_html_and_markdown(week_data, tmp_path, monkeypatch):
    settings, _posts, alerts = week_data
    monkeypatch.setenv("YUQING_CLICKHOUSE_DATABASE", settings.clickhouse.database)
    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers())
    out, md = tmp_path / "report.html", tmp_path / "report.md"
    args = parser.parse_args(["report", "--from", "2026-11-16", "--to", "2026-11-22",
                              "--out", str(out), "--markdown", str(md)])
    assert args.func(args) == 0
    html = out.read_text(encoding="utf-8")
    # self-contained: nothing to fetch (post links are plain <a href>, not loaded)
    assert html.count("<svg") >= 3
    assert "<script" not in html and "<link" not in html and " src=" not in html and "@import" not in html
    assert "舆情周报" in html and alerts[0]["alert_id"] in html and "王敏" in html
    assert "超时" in html and "达标" in html
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# 舆情周报") and alerts[2]["alert_id"] in text and "未认领" in text
    # bad dates are one-line user errors
    from core.errors import CommandError

    bad = parser.parse_args(["report", "--from", "2026-11-22", "--to", "2026-11-16", "--out", str(out)])
    with pytest.raises(CommandError, match="before"):
        bad.func(bad)


def test_report_renders_in_headless_chromium(week_data, tmp_path):
    from tests.fixtures.browser import chromium_path, screenshot

    chromium_path()  # before the data: a machine without the browser fails at once
    settings, _posts, _alerts = week_data
    with ResponseStore(settings.clickhouse) as store:
        data = load_report(store, Period.from_dates(*WEEK))
    page = tmp_path / "report.html"
    page.write_text(render_html(data), encoding="utf-8")
    shot = tmp_path / "shot.png"
    screenshot(page, shot, 1280, 2000)
    px = read_png(shot)
    assert px.shape[:2] == (2000, 1280)
    rgb = px[:, :, :3].astype(int)
    ink = (rgb.min(axis=2) < 200).mean()  # text, lines, bars: clearly darker than the page
    orange = ((abs(rgb[:, :, 0] - 0xD9) < 30) & (abs(rgb[:, :, 1] - 0x48) < 40) & (rgb[:, :, 2] < 80)).sum()
    print(f"\nscreenshot: {px.shape[1]}x{px.shape[0]}, ink {ink:.1%}, chart-orange pixels {orange}")
    assert ink > 0.01, "the screenshot is (nearly) blank"
    assert orange > 500, "no chart line/bar colour visible: the inline SVG did not render"


def test_markdown_and_html_without_data_still_render():
    from sinks.report.data import ReportData

    data = ReportData(Period.from_dates(*WEEK), "快送", datetime(2026, 11, 23, tzinfo=timezone.utc))
    html = render_html(data)
    assert "本期无数据" not in html  # a brand filter names the brand
    assert html.count("<svg") == 2 and "无" in html
    assert "相关帖子 0 条" in render_markdown(data)


def test_the_report_counts_incidents_with_their_categories(report_db):
    """A two-category story is one incident in the report (issue #22), beside an old key-level alert."""
    from scoring.incidents import IncidentState, on_key_alert, on_time

    at = datetime(2026, 11, 18, 10, 0, tzinfo=CST)
    state, records = IncidentState(), []
    for r in (alert("快送", "privacy", "medium", at, 40), alert("快送", "legal", "high", at + timedelta(minutes=8), 60),
              {**alert("快送", "legal", "high", at + timedelta(minutes=8), 60), "event": "lowered", "level": "low",
               "previous_level": "high", "at": (at + timedelta(hours=2)).isoformat()},
              {**alert("快送", "privacy", "medium", at, 40), "event": "lowered", "level": "low",
               "previous_level": "medium", "at": (at + timedelta(hours=2, minutes=5)).isoformat()}):
        state, got = on_key_alert(state, r)
        records.extend(got)
    records.extend(on_time(state, int((at + timedelta(days=1)).timestamp() * 1000))[1])
    assert [r["kind"] for r in records] == ["opened", "escalated", "lowered", "lowered", "closed"]
    old = alert("星云支付", "refund", "medium", at, 25)
    writer = ClickHouseWriter(report_db.clickhouse, max_attempts=3)
    try:
        assert not writer.insert("alerts", [alert_row(a) for a in records + [old]]).refused
    finally:
        writer.close()
    with ResponseStore(report_db.clickhouse) as store:
        data = load_report(store, Period.from_dates(*WEEK))
    got = as_dict(data)
    assert got["incidents"] == 1 and len(got["alerts"]) == 2
    assert got["incident_categories"] == {records[0]["incident_id"]: ["legal", "privacy"]}
    incident = next(a for a in data.alerts if a.incident)
    assert incident.top_level == "high" and incident.clock.deadlines  # the page's deadlines, not the close's none
    assert "事件结束" in render_markdown(data)
