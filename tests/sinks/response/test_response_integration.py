"""respond / ack / resolve / remind against the REAL ClickHouse test stack."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import pytest

from scoring.alerts import AlertEvent
from core.levels import load_playbooks
from sinks.clickhouse.rows import alert_row, post_row
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.notify.config import parse_notify_config
from sinks.response import cli as response_cli
from sinks.response.remind import run_once
from sinks.response.store import ResponseStore
from core.errors import CommandError


def make_alert(detected: datetime, level="high", category="privacy", brand="快送") -> dict:
    ms = int(detected.timestamp() * 1000)
    return AlertEvent("raised", brand, category, level, "low", ms, ms, ms - 600_000, ms, 180, 0.8, 0.7, 0.9, 0.8,
                      0.75, ({"id": "weibo:1", "text": "快送泄露用户手机号", "platform": "weibo", "author": "u",
                              "url": "https://weibo.example.com/1"},), load_playbooks()[level]).to_dict()


def post(i: int, platform: str, at: datetime) -> dict:
    return {"id": f"{platform}:{i}", "platform": platform, "text": f"帖子{i}", "published_at": at.isoformat(),
            "sentiment": 0.1, "negative": True, "brands": ["快送"], "categories": ["privacy"],
            "matches": [{"brand": "快送", "category": "privacy"}], "author_id": f"u{i}"}


def write(settings, alerts, posts=()):
    w = ClickHouseWriter(settings.clickhouse, max_attempts=3)
    try:
        assert not w.insert("alerts", [alert_row(a) for a in alerts]).refused
        if posts:
            assert not w.insert("posts", [post_row(p) for p in posts]).refused
    finally:
        w.close()


@pytest.fixture
def cli(response_db, monkeypatch):
    monkeypatch.setenv("YUQING_CLICKHOUSE_DATABASE", response_db.clickhouse.database)
    parser = argparse.ArgumentParser()
    response_cli.register(parser.add_subparsers(dest="command"))

    def run(*argv):
        args = parser.parse_args(list(argv))
        return args.func(args)
    return run


def test_respond_ack_resolve_print_the_clock(response_db, cli, capsys):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    detected = now - timedelta(minutes=70)
    alert = make_alert(detected)
    posts = [post(i, p, detected + timedelta(minutes=i % 30)) for i, p in enumerate(["douyin"] * 5 + ["weibo"] * 3 + ["zhihu"])]
    write(response_db, [alert], posts)
    aid = alert["alert_id"]

    assert cli("respond", aid) == 0
    out = capsys.readouterr().out
    assert "快送·隐私与数据安全（高风险）" in out and "平台 抖音、微博、知乎" in out and "相关帖子 9 条" in out
    assert "0–2 小时" in out and "声明草稿" in out

    with pytest.raises(CommandError, match="no alert nope"):
        cli("ack", "nope", "--by", "张三")
    at = (detected + timedelta(minutes=40)).isoformat()
    assert cli("ack", aid, "--by", "张三", "--at", at) == 0
    out = capsys.readouterr().out
    assert "由 张三" in out and "距首次发现 40分钟" in out and "首次声明 (first statement)时限 2小时：达标" in out
    assert cli("resolve", aid, "--at", (detected + timedelta(hours=13)).isoformat()) == 0
    out = capsys.readouterr().out
    assert "由 张三" in out and "距首次发现 13小时" in out and "超时 1小时" in out  # resolver defaults to the acker
    with pytest.raises(CommandError, match="already resolved"):
        cli("ack", aid, "--by", "李四")
    with ResponseStore(response_db.clickhouse) as store:
        acts = [(a.action, a.actor) for a in store.actions([aid])]
    assert acts == [("acked", "张三"), ("resolved", "张三")]
    # the migration's view reports the same response times
    from sinks.clickhouse.client import connect

    c = connect(response_db.clickhouse, database=response_db.clickhouse.database)
    assert c.execute("SELECT acked_by, ack_seconds, resolve_seconds FROM alert_response_times") == [
        ("张三", 40 * 60, 13 * 3600)]
    c.disconnect()


def test_remind_pages_each_deadline_once_and_stops_when_resolved(response_db, robot):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = make_alert(now - timedelta(minutes=105))  # statement due in 15 min
    other = make_alert(now - timedelta(minutes=100), level="medium", category="refund", brand="星云支付")
    calm = make_alert(now - timedelta(minutes=30), level="medium", category="outage")  # nothing due yet
    write(response_db, [first, other, calm])
    config = parse_notify_config({"channels": [{"name": "oncall", "kind": "webhook", "url": robot.url}],
                                  "retry": {"attempts": 1, "timeout_s": 5}}, env={})
    with ResponseStore(response_db.clickhouse) as store:
        store.record(other["alert_id"], "resolved", "王五", now - timedelta(minutes=1))
        outcomes = run_once(store, config, now)
        assert [(o.alert_id, o.deadline, o.sent_to) for o in outcomes] == [
            (first["alert_id"], "首次声明 (first statement)", ("oncall",))]
        assert run_once(store, config, now + timedelta(minutes=1)) == []  # once only
        later = run_once(store, config, now + timedelta(hours=2))
        assert sorted((o.alert_id, o.deadline) for o in later) == sorted([
            (first["alert_id"], "黄金4小时 (golden four hours)"),  # due in 15 min
            (calm["alert_id"], "首次回应 (first statement)")])  # 30 min overdue, never reminded
        assert "已超时 30分钟" in next(o.text for o in later if o.alert_id == calm["alert_id"])
        reminded = [a.note for a in store.actions([first["alert_id"]]) if a.action == "reminded"]
        assert reminded == ["reminder:首次声明 (first statement)", "reminder:黄金4小时 (golden four hours)"]
        store.record(first["alert_id"], "resolved", "张三", now + timedelta(hours=2, minutes=5))
        final = run_once(store, config, now + timedelta(hours=11, minutes=45))
        assert [o.alert_id for o in final] == [calm["alert_id"]]  # the resolved alert stays quiet
    assert len(robot.bodies) == 4
    body = robot.bodies[0]
    assert "距首次声明 (first statement)截止还有 15分钟" in body["text"]
    assert "尚未认领" in body["text"] and "声明草稿" in body["text"] and "快送" in body["text"]
    assert body["notice"]["alertname"] == "YuqingResponseReminder" and body["notice"]["route"] == "critical"


def test_remind_without_channels_is_a_clear_error(response_db, cli):
    with pytest.raises(CommandError, match="no notify channels configured"):
        cli("remind", "--once")


def test_respond_offline_from_an_alert_file(tmp_path, capsys, cli):
    detected = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    a = make_alert(detected, level="medium", category="refund")
    b = {**make_alert(detected, level="high", category="refund"), "at": "2026-11-25T02:30:00+00:00"}
    f = tmp_path / "alerts.jsonl"
    f.write_text(json.dumps(a, ensure_ascii=False) + "\n" + json.dumps(b, ensure_ascii=False) + "\n", encoding="utf-8")
    assert cli("respond", "--alert-file", str(f), "--format", "json") == 0
    got = json.loads(capsys.readouterr().out)
    assert got["level"] == "high" and got["template"] == "refund" and len(got["phases"]) == 3  # the latest event
    assert "11月25日 22:00" in got["phases"][0]["statement"]
    assert cli("respond", a["alert_id"], "--alert-file", str(f), "--format", "markdown") == 0
    assert capsys.readouterr().out.startswith("# 舆情回应草稿：快送·退款与用户权益（高风险）")
    with pytest.raises(CommandError, match="no alert record with alert_id zzz"):
        cli("respond", "zzz", "--alert-file", str(f))
    bad = tmp_path / "tpl"
    bad.mkdir()
    with pytest.raises(CommandError, match="no template for category 'general'"):
        cli("respond", "--alert-file", str(f), "--templates", str(bad))


def incident_from(*keys: dict) -> list[dict]:
    """Key alert records through the incident stage (scoring/incidents.py), as the job publishes them."""
    from scoring.incidents import IncidentState, on_key_alert

    state, out = IncidentState(), []
    for record in keys:
        state, got = on_key_alert(state, record)
        out.extend(got)
    return out


def test_ack_remind_and_respond_follow_the_incident_and_old_alert_ids_still_work(response_db, cli, robot, capsys):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    detected = now - timedelta(minutes=105)  # the first statement is due in 15 min
    privacy = make_alert(detected, level="medium")
    legal = make_alert(detected + timedelta(minutes=30), level="high", category="legal")
    fell = dict(make_alert(detected + timedelta(minutes=50), level="high", category="legal"),
                event="lowered", level="low", previous_level="high")
    records = incident_from(privacy, legal, fell)
    assert [r["kind"] for r in records] == ["opened", "escalated", "lowered"]
    old = make_alert(now - timedelta(minutes=100), level="medium", category="refund", brand="星云支付")
    write(response_db, records + [old])
    incident = records[0]["incident_id"]

    assert cli("respond", incident) == 0
    out = capsys.readouterr().out
    assert "快送" in out and "声明草稿" in out
    config = parse_notify_config({"channels": [{"name": "oncall", "kind": "webhook", "url": robot.url}],
                                  "retry": {"attempts": 1, "timeout_s": 5}}, env={})
    with ResponseStore(response_db.clickhouse) as store:
        # the incident is open (its privacy key is still medium) although its latest record is a key falling to low
        assert sorted(store.open_alert_ids(now - timedelta(days=1))) == sorted([incident, old["alert_id"]])
        alert = store.alert(incident)
        assert alert["kind"] == "escalated" and alert["top_level"] == "high" and alert["first_detected_at"] == records[0]["first_detected_at"]
        outcomes = run_once(store, config, now)
        # deadlines run from the incident's first detection: one reminder for the incident, none per key
        assert [(o.alert_id, o.deadline) for o in outcomes if o.alert_id == incident] == [
            (incident, "首次声明 (first statement)")]
    assert cli("ack", incident, "--by", "张三") == 0 and cli("ack", old["alert_id"], "--by", "李四") == 0
    with ResponseStore(response_db.clickhouse) as store:
        assert [a.actor for a in store.actions([incident]) if a.action == "acked"] == ["张三"]
        assert [a.actor for a in store.actions([old["alert_id"]]) if a.action == "acked"] == ["李四"]
