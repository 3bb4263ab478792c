"""A page travels metric -> Prometheus -> Alertmanager -> `yuqing notify` -> signed robots,
and a Kafka alert event pages once even when the Prometheus path fires too.

Everything is real: Prometheus and Alertmanager processes with the project's rules and
alertmanager.yml, a Kafka broker, the exporter from sinks.metrics, and a robot stand-in
that rejects bad signatures.
"""
from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sinks.metrics import Metrics, start_exporter
from sinks.notify.config import ChannelConfig, KafkaConfig, NotifyConfig, RetryConfig, render_alertmanager_config
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
    config = NotifyConfig(
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
        am = start_alertmanager(tmp_path / "am", render_alertmanager_config(f"http://127.0.0.1:{notify.port}"))
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
    started = time.monotonic()
    metrics.set_risk("快送", "privacy", level="high", risk_score=0.82, influence=0.7, severity=0.9, volatility=0.6)

    ding = wait_until(lambda: robot.messages("dingtalk", "快送·privacy"), 20, 0.05, "the DingTalk page")
    feishu = wait_until(lambda: robot.messages("feishu", "快送·privacy"), 5, 0.05, "the Feishu page")
    latency = time.monotonic() - started
    assert latency < 15, f"gauge -> robot took {latency:.1f}s"

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

    time.sleep(2)  # Alertmanager's group_interval is 30 s: nothing more may arrive
    assert len(robot.messages("dingtalk", "快送·privacy")) == 1
    assert len(robot.messages("feishu", "快送·privacy")) == 1


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
        started = time.monotonic()
        producer.send(pipeline["topic"], json.dumps(event, ensure_ascii=False).encode()).get(timeout=10)
    finally:
        producer.close(timeout=5)

    ding = wait_until(lambda: robot.messages("dingtalk", "快送·outage"), 10, 0.02, "the Kafka-path page")
    wait_until(lambda: robot.messages("feishu", "快送·outage"), 5, 0.02, "the Kafka-path Feishu page")
    latency = time.monotonic() - started
    assert latency < 5, f"Kafka event -> robot took {latency:.1f}s"
    text = ding[0]["markdown"]["text"]
    assert "距声明截止还有 1小时42分" in text
    assert "服务故障预案（负责人：值班经理）" in text and "1) 确认故障范围" in text
    assert "[原帖](https://example.invalid/p/1)" in text and "微博 @测试用户" in text
    assert "实时评分作业（Kafka）" in text

    # Now the Prometheus path fires for the same brand/category/level: it must be absorbed.
    metrics.set_risk("快送", "outage", level="high", risk_score=0.74, influence=0.66, severity=0.58, volatility=0.91)
    wait_until(lambda: _count(metrics, "yuqing_notify_deduplicated_total", path="alertmanager") >= 1, 20, 0.05,
               "Alertmanager's copy to reach notify and be deduplicated")
    notify.service.wait_idle(5)
    assert _count(metrics, "yuqing_notify_received_total", path="alertmanager") >= 1
    assert len(robot.messages("dingtalk", "快送·outage")) == 1
    assert len(robot.messages("feishu", "快送·outage")) == 1
