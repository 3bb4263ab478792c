"""Signatures (checked against vectors computed with openssl), payloads, retries, the queue."""
from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone

import pytest

from sinks.notify.channels import DeliveryError, build_request, deliver, dingtalk_sign, feishu_sign, response_error
from sinks.notify.config import ChannelConfig, RetryConfig
from sinks.notify.notice import Notice
from sinks.notify.retryqueue import Pending, RetryQueue
from tests.sinks.notify.conftest import DINGTALK_SECRET, FEISHU_SECRET

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
NOTICE = Notice(path="kafka", route="critical", status="firing", alertname="YuqingRiskEvent",
                brand="快送", category="privacy", level="high", risk_score=0.8)


def test_signatures_match_independent_openssl_vectors():
    # printf '1700000000000\nSECtest' | openssl dgst -sha256 -hmac SECtest -binary | base64
    assert dingtalk_sign("SECtest", 1700000000000) == "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="
    # empty message, key "1700000000\ntest": openssl dgst -sha256 -mac HMAC -macopt key:... -binary | base64
    assert feishu_sign("test", 1700000000) == "eSJQnOl8XqPTMPHWz9e5IzeHS/tqoc68g2967ekIPmg="


def test_dingtalk_request_carries_url_encoded_sign_and_keeps_the_token():
    ch = ChannelConfig("d", "dingtalk", "https://robot.invalid/send?access_token=abc", "SECtest")
    req = build_request(ch, NOTICE, NOW)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(req.url).query)
    ts = int(NOW.timestamp() * 1000)
    assert q == {"access_token": ["abc"], "timestamp": [str(ts)], "sign": [dingtalk_sign("SECtest", ts)]}
    assert "%2B" in req.url or "%2F" in req.url or "%3D" in req.url  # base64 specials are escaped
    body = json.loads(req.body)
    assert body["msgtype"] == "markdown" and "快送·privacy" in body["markdown"]["title"]


def test_feishu_request_signs_in_the_body_with_seconds():
    ch = ChannelConfig("f", "feishu", "https://open.invalid/hook/x", "s3cret")
    body = json.loads(build_request(ch, NOTICE, NOW).body)
    ts = int(NOW.timestamp())
    assert body["timestamp"] == str(ts) and body["sign"] == feishu_sign("s3cret", ts)
    assert body["msg_type"] == "text" and "【舆情预警·高风险】快送·privacy" in body["content"]["text"]


def test_wecom_slack_and_webhook_payloads():
    wecom = json.loads(build_request(ChannelConfig("w", "wecom", "https://w.invalid"), NOTICE, NOW).body)
    assert wecom["msgtype"] == "markdown" and "**等级**：高（high）" in wecom["markdown"]["content"]
    slack = json.loads(build_request(ChannelConfig("s", "slack", "https://s.invalid"), NOTICE, NOW).body)
    assert "快送·privacy" in slack["text"]
    req = build_request(ChannelConfig("g", "webhook", "https://g.invalid", "k"), NOTICE, NOW)
    generic = json.loads(req.body)
    assert generic["notice"]["brand"] == "快送" and req.headers["X-Yuqing-Signature"].startswith("sha256=")


@pytest.mark.parametrize("kind, status, body, ok", [
    ("dingtalk", 200, b'{"errcode":0,"errmsg":"ok"}', True),
    ("dingtalk", 200, b'{"errcode":310000,"errmsg":"sign not match"}', False),
    ("feishu", 200, b'{"code":19021,"msg":"sign match fail"}', False),
    ("feishu", 200, b'{"StatusCode":0}', True),
    ("slack", 200, b"ok", True),
    ("webhook", 503, b"busy", False),
])
def test_response_checks_read_robot_error_codes(kind, status, body, ok):
    assert (response_error(kind, status, body) is None) is ok


def test_deliver_retries_then_succeeds(robot):
    robot.fail_next = 2
    ch = ChannelConfig("d", "dingtalk", robot.url("dingtalk"), DINGTALK_SECRET)
    failures = []
    deliver(ch, NOTICE, RetryConfig(attempts=3, backoff_s=0.01), on_failure=failures.append)
    assert len(failures) == 2 and len(robot.messages("dingtalk")) == 1


def test_deliver_gives_up_on_a_wrong_secret_with_the_robots_reason(robot):
    ch = ChannelConfig("f", "feishu", robot.url("feishu"), FEISHU_SECRET + "x")
    with pytest.raises(DeliveryError, match="19021"):
        deliver(ch, NOTICE, RetryConfig(attempts=2, backoff_s=0.01))
    assert robot.rejected == [("feishu", "sign match fail")] * 2 and not robot.accepted


def test_deliver_times_out_on_a_dead_port():
    import socket
    with socket.socket() as s:  # a port that refuses connections
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ch = ChannelConfig("x", "slack", f"http://127.0.0.1:{port}/hook")
    with pytest.raises(DeliveryError, match="channel x"):
        deliver(ch, NOTICE, RetryConfig(attempts=2, backoff_s=0.01, timeout_s=0.5))


def test_retry_queue_is_bounded_and_survives_a_restart(tmp_path):
    path = tmp_path / "q.jsonl"
    q = RetryQueue(2, path)
    items = [Pending("d", NOTICE, 3, 1.0 + i, "boom") for i in range(3)]
    assert q.push(items[0]) is None and q.push(items[1]) is None
    assert q.push(items[2]) == items[0]  # the oldest is dropped when full
    again = RetryQueue(2, path)
    assert len(again) == 2
    restored = again.take_all()
    assert [p.first_failed_at for p in restored] == [2.0, 3.0] and restored[0].notice == NOTICE
    assert len(RetryQueue(2, path)) == 0
