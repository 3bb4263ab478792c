"""A page travels metric -> Prometheus -> Alertmanager -> `yuqing notify` -> signed robots,
a Kafka alert event pages once even when the Prometheus path fires too, and a forged
webhook POST is refused without blocking the real page that follows.

Everything is real: Prometheus and Alertmanager processes with the project's rules and
alertmanager.yml (webhooks with the bearer token from a 0600 file), a Kafka broker, the
exporter from sinks.metrics, and a robot stand-in that rejects bad signatures. No wall-clock
assertions here: how fast a page travels is measured by the benchmarks, not asserted.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sinks.metrics import Metrics, start_exporter
from sinks.notify.config import (ChannelConfig, KafkaConfig, NotifyConfig, RetryConfig, ensure_token_file,
                                 read_token_file, render_alertmanager_config)
from sinks.notify.service import NotifyServer

from tests.sinks.notify.conftest import DINGTALK_SECRET, FEISHU_SECRET, http_get_json, start_alertmanager, start_prometheus, wait_until

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "deploy" / "prometheus" / "rules" / "yuqing.rules.yml"
pytestmark = [pytest.mark.slow]


@pytest.fixture
def pipeline(tmp_path, robot, kafka_bootstrap, kafka_topic):
    topic = kafka_topic(partitions=1)
    metrics = Metrics(CollectorRegistry())
    exporter = start_exporter(0, registry=metrics.registry)
    token_file = ensure_token_file(tmp_path / "secrets" / "notify-token")
    config = NotifyConfig(
        token=read_token_file(token_file),
        dedup_window_s=600,
        channels=(
            ChannelConfig("oncall-dingtalk", "dingtalk", robot.url("dingtalk"), DINGTALK_SECRET),
            ChannelConfig("oncall-feishu", "feishu", robot.url("feishu"), FEISHU_SECRET),
            # A misconfigured secret: the robot must refuse it, notify must count and queue it.
            ChannelConfig("feishu-wrong-secret", "feishu", robot.url("feishu"), "not-the-secret",
                          routes=("critical",)),
        ),
        retry=RetryConfig(attempts=2, backoff_s=0.1, timeout_s=3, retry_every_s=3600),
        kafka=KafkaConfig(enabled=True, min_level="high", auto_offset_reset="latest"),
    )
    notify = NotifyServer(config, metrics, port=0, kafka_bootstrap=kafka_bootstrap, kafka_topic=topic).start()
    procs = []
    try:
        am = start_alertmanager(tmp_path / "am", render_alertmanager_config(f"http://127.0.0.1:{notify.port}", token_file))
        procs.append(am)
        prom = start_prometheus(
            tmp_path / "prom",
            {"yuqing-job": [f"127.0.0.1:{exporter.port}"], "yuqing-notify": [f"127.0.0.1:{notify.port}"]},
            [RULES], am.url.removeprefix("http://"))
        procs.append(prom)

        def scraped():
            q = urllib.parse.quote('up{job="yuqing-job"}')
            result = http_get_json(f"{prom.url}/api/v1/query?query={q}")["data"]["result"]
            return result and result[0]["value"][1] == "1"
        wait_until(scraped, 60, 0.2, "Prometheus to scrape the exporter")
        wait_until(lambda: notify.consumer.state == "assigned", 90, 0.1, "notify to join the Kafka group")
        yield {"metrics": metrics, "notify": notify, "robot": robot, "topic": topic,
               "bootstrap": kafka_bootstrap, "prom": prom, "am": am}
    finally:
        notify.close()
        for proc in reversed(procs):
            proc.stop()
        exporter.close()


def _count(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_high_risk_gauge_pages_signed_robots_through_prometheus_and_alertmanager(pipeline):
    metrics, robot, notify = pipeline["metrics"], pipeline["robot"], pipeline["notify"]
    metrics.set_risk("快送", "privacy", level="high", risk_score=0.82, influence=0.7, severity=0.9, volatility=0.6)

    ding = wait_until(lambda: robot.messages("dingtalk", "快送·privacy"), 60, 0.05, "the DingTalk page")
    feishu = wait_until(lambda: robot.messages("feishu", "快送·privacy"), 30, 0.05, "the Feishu page")

    text = ding[0]["markdown"]["text"]
    assert "【舆情预警·高风险】快送·privacy" in ding[0]["markdown"]["title"]
    assert "**风险分**：0.82（影响力 0.70｜严重度 0.90｜波动性 0.60）" in text  # annotations from the rule
    assert "Prometheus 告警" in text
    assert "风险分：0.82" in feishu[0]["content"]["text"]

    # The wrongly signed channel was refused by the robot, counted, and kept for retry.
    wait_until(lambda: len(notify.service.queue) == 1, 10, 0.05, "the refused message in the retry queue")
    assert ("feishu", "sign match fail") in robot.rejected
    assert _count(metrics, "yuqing_notify_delivery_failures_total", channel="feishu-wrong-secret") == 2
    assert _count(metrics, "yuqing_notify_sent_total", channel="oncall-dingtalk") == 1

    notify.service.wait_idle(5)
    assert len(robot.messages("dingtalk", "快送·privacy")) == 1
    assert len(robot.messages("feishu", "快送·privacy")) == 1


def test_two_high_categories_of_one_brand_are_one_prometheus_alert_and_one_page(pipeline):
    """The brand rules fire per brand (an incident is a brand's story): privacy and legal high
    at once reach notify as ONE alert naming the leading category, not one per category."""
    metrics, robot, notify = pipeline["metrics"], pipeline["robot"], pipeline["notify"]
    metrics.set_risk("快送", "privacy", level="high", risk_score=0.82, influence=0.7, severity=0.9, volatility=0.6)
    metrics.set_risk("快送", "legal", level="high", risk_score=0.91, influence=0.5, severity=0.8, volatility=0.4)

    ding = wait_until(lambda: robot.messages("dingtalk", "【舆情预警·高风险】快送"), 60, 0.05, "the brand's page")
    notify.service.wait_idle(5)
    assert _count(metrics, "yuqing_notify_received_total", path="alertmanager") == 1
    assert "快送·legal" in ding[0]["markdown"]["title"]  # the leading category (highest score)
    assert "**风险分**：0.91（影响力 0.50｜严重度 0.80｜波动性 0.40）" in ding[0]["markdown"]["text"]
    assert len(robot.messages("dingtalk", "【舆情预警·高风险】快送")) == 1


def test_kafka_alert_event_pages_once_when_prometheus_fires_too(pipeline):
    from kafka import KafkaProducer

    metrics, robot, notify = pipeline["metrics"], pipeline["robot"], pipeline["notify"]
    now = datetime.now(timezone.utc)
    event = {
        "alert_id": "kuaisong-outage-1", "event": "raised", "brand": "快送", "category": "outage",
        "level": "high", "previous_level": "medium", "at": now.isoformat(),
        "first_detected_at": (now - timedelta(minutes=18)).isoformat(),
        "window_start": (now - timedelta(minutes=30)).isoformat(), "window_end": now.isoformat(),
        "posts": 57, "negative_ratio": 0.81, "influence": 0.66, "severity": 0.58, "volatility": 0.91,
        "risk_score": 0.74,
        "examples": [{"id": "weibo:1", "text": "测试帖子：订单页面一直打不开", "platform": "weibo",
                      "author": {"name": "测试用户"}, "url": "https://example.invalid/p/1"}],
        "playbook": {"level": "high", "title": "服务故障预案", "owner": "值班经理", "steps": ["确认故障范围", "发布致歉说明"]},
        "deadlines": [{"name": "声明", "due_at": (now + timedelta(hours=1, minutes=42, seconds=30)).isoformat(),
                       "hours_after_detection": 2}],
    }
    producer = KafkaProducer(bootstrap_servers=pipeline["bootstrap"], request_timeout_ms=10000, max_block_ms=10000)
    try:
        producer.send(pipeline["topic"], json.dumps(event, ensure_ascii=False).encode()).get(timeout=10)
    finally:
        producer.close(timeout=5)

    ding = wait_until(lambda: robot.messages("dingtalk", "快送·outage"), 60, 0.02, "the Kafka-path page")
    wait_until(lambda: robot.messages("feishu", "快送·outage"), 30, 0.02, "the Kafka-path Feishu page")
    text = ding[0]["markdown"]["text"]
    assert "距声明截止还有 1小时42分" in text
    assert "服务故障预案（负责人：值班经理）" in text and "1) 确认故障范围" in text
    assert "[原帖](https://example.invalid/p/1)" in text and "【微博·测试用户】" in text
    assert "实时评分作业（Kafka）" in text

    # Now the Prometheus path fires for the same brand/category/level: it must be absorbed.
    metrics.set_risk("快送", "outage", level="high", risk_score=0.74, influence=0.66, severity=0.58, volatility=0.91)
    wait_until(lambda: _count(metrics, "yuqing_notify_deduplicated_total", path="alertmanager") >= 1, 20, 0.05,
               "Alertmanager's copy to reach notify and be deduplicated")
    notify.service.wait_idle(5)
    assert _count(metrics, "yuqing_notify_received_total", path="alertmanager") >= 1
    assert len(robot.messages("dingtalk", "快送·outage")) == 1
    assert len(robot.messages("feishu", "快送·outage")) == 1


def _forge(notify, route: str, body: dict, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{notify.port}/alertmanager/{route}", method="POST",
                                 data=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_forged_page_is_refused_and_the_real_page_still_arrives(pipeline):
    """Issue #18: a forged firing POST used to be sent and then dedup the real page for 15 min."""
    metrics, robot, notify = pipeline["metrics"], pipeline["robot"], pipeline["notify"]
    forged = {"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "startsAt": "2026-11-25T02:00:00Z",
        "labels": {"alertname": "YuqingHighRisk", "severity": "critical", "team": "pr", "level": "high",
                   "brand": "快送", "category": "security"},
        "annotations": {"summary_zh": "伪造：请立即转账到 <at user_id=\"all\">所有人</at>"}}]}
    for token in (None, "", "not-the-token-but-long-enough", notify.service.config.token + "x"):
        status, answer = _forge(notify, "critical", forged, token)
        assert status == 401, (token, status, answer)
    assert _count(metrics, "yuqing_notify_received_total", path="alertmanager-unauthorized") == 4
    assert _count(metrics, "yuqing_notify_received_total", path="alertmanager") == 0
    assert len(notify.service.dedup) == 0 and not robot.messages("dingtalk", "快送·security")

    # The real page for the same brand/category/level comes through Prometheus and Alertmanager,
    # which present the token from the file: it is delivered, not deduplicated.
    metrics.set_risk("快送", "security", level="high", risk_score=0.9, influence=0.8, severity=0.9, volatility=0.5)
    ding = wait_until(lambda: robot.messages("dingtalk", "快送·security"), 60, 0.05, "the real page")
    notify.service.wait_idle(5)
    assert _count(metrics, "yuqing_notify_deduplicated_total", path="alertmanager") == 0
    assert "伪造" not in json.dumps(ding, ensure_ascii=False)
    assert "**风险分**：0.90" in ding[0]["markdown"]["text"]
