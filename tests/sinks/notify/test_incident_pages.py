"""Notify speaks incidents (issue #22): pages only on opened/escalated (and the old `raised`),
updates are recorded without a page, a close resolves the incident's highest level, and the
page lists the incident's categories."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from scoring.incidents import IncidentState, on_key_alert, on_time
from core.times import format_ms
from sinks.notify.notice import NoticeError, notice_from_alert_event
from sinks.notify.render import render

T0 = int(datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc).timestamp() * 1000)
MIN = 60_000
NOW = datetime(2026, 11, 25, 1, 30, tzinfo=timezone.utc)


def key(event, category, level, at_ms, previous="low"):
    return {"alert_id": f"k-{category}", "event": event, "brand": "快送", "category": category, "level": level,
            "previous_level": previous, "at": format_ms(at_ms), "first_detected_at": format_ms(at_ms),
            "window_start": format_ms(at_ms - 10 * MIN), "window_end": format_ms(at_ms), "posts": 30,
            "negative_ratio": 0.8, "influence": 0.6, "severity": 0.9, "volatility": 0.5, "risk_score": 0.7,
            "examples": [{"id": "weibo:1", "text": "快送泄露用户隐私，已报警[怒]", "platform": "weibo",
                          "author": "网友甲", "url": "https://weibo.example.com/1"}],
            "playbook": {"level": level, "title": "隐私事件预案", "owner": "公关", "steps": ["核实"]},
            "deadlines": [{"name": "首次回应", "due_at": format_ms(at_ms + 3_600_000), "hours_after_detection": 1.0}]}


def crisis_records():
    """A fast two-category crisis, as the incident stage publishes it."""
    state, out = IncidentState(), []
    for r in (key("raised", "privacy", "medium", T0), key("raised", "privacy", "high", T0 + 6 * MIN, "medium"),
              key("raised", "legal", "medium", T0 + 7 * MIN), key("raised", "legal", "high", T0 + 13 * MIN, "medium"),
              key("lowered", "privacy", "low", T0 + 80 * MIN, "high"), key("lowered", "legal", "low", T0 + 81 * MIN, "high")):
        state, got = on_key_alert(state, r)
        out.extend(got)
    state, got = on_time(state, T0 + 10 * 60 * MIN)
    return out + got


@pytest.fixture()
def service(tmp_path):
    from prometheus_client import CollectorRegistry

    from sinks.metrics import Metrics
    from sinks.notify.config import KafkaConfig, NotifyConfig, RetryConfig
    from sinks.notify.service import NotifyService

    cfg = NotifyConfig(channels=(), kafka=KafkaConfig(enabled=False, min_level="medium"),
                       retry=RetryConfig(attempts=1, backoff_s=0.01, queue_file=tmp_path / "retry.jsonl"))
    svc = NotifyService(cfg, Metrics(CollectorRegistry()))
    yield svc
    svc.close()


def test_one_crisis_gives_two_pages_and_one_resolve(service, monkeypatch):
    submitted = []
    monkeypatch.setattr(service, "submit", lambda notice: submitted.append(notice) or True)
    records = crisis_records()
    assert [r["kind"] for r in records] == ["opened", "escalated", "updated", "updated", "updated", "lowered", "closed"]
    paged = [service.handle_alert_event(r) for r in records]
    assert paged == [True, True, False, False, False, False, True]
    assert [(n.status, n.level, n.kind) for n in submitted] == [
        ("firing", "medium", "opened"), ("firing", "high", "escalated"), ("resolved", "high", "closed")]
    assert len({n.alert_id for n in submitted}) == 1 == len({n.incident_id for n in submitted})


def test_the_page_lists_the_incidents_categories_and_reads_as_an_incident():
    records = crisis_records()
    escalated = notice_from_alert_event(records[1])
    assert "事件升级" in render(escalated, NOW)
    joined = notice_from_alert_event({**records[3], "kind": "escalated"})  # as if legal had gone above the max
    text = render(joined, NOW)
    assert "涉及类别：privacy（高）" in text and "legal（高）" in text, text


def test_old_records_without_a_kind_page_as_before_and_a_bad_kind_is_refused():
    old = {k: v for k, v in key("raised", "privacy", "high", T0).items()}
    assert notice_from_alert_event(old).status == "firing"
    assert notice_from_alert_event({**old, "event": "lowered", "level": "low", "previous_level": "high"}).status == "resolved"
    with pytest.raises(NoticeError, match="kind"):
        notice_from_alert_event({**old, "kind": "reopened"})
    with pytest.raises(NoticeError, match="event"):
        notice_from_alert_event({**old, "event": "closed"})  # "closed" only on an incident's close record
