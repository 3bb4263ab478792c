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


# --- secrets never reach a log line ---------------------------------------------------------------
DING_TOKEN = "d1n9t0k3n5ecret0123456789abcdef"


def test_malformed_url_is_queued_with_a_redacted_error_and_no_log_line_has_the_token(caplog, tmp_path):
    """Issue #18: a malformed webhook URL logged its access token (and the page was lost)."""
    from prometheus_client import CollectorRegistry

    from sinks.metrics import Metrics
    from sinks.notify.config import KafkaConfig, NotifyConfig
    from sinks.notify.service import NotifyService

    bad = ChannelConfig("ding", "dingtalk", f"https://oapi.dingtalk.invalid/robot/send?access_token={DING_TOKEN} x",
                        "SECsign-secret-0123456789")
    cfg = NotifyConfig(channels=(bad,), kafka=KafkaConfig(enabled=False),
                       retry=RetryConfig(attempts=2, backoff_s=0.01, queue_file=tmp_path / "retry.jsonl"))
    service = NotifyService(cfg, Metrics(CollectorRegistry()))
    caplog.set_level("INFO", logger="yuqing.notify")
    try:
        assert service.submit(NOTICE)
        assert service.wait_idle(10)
        [pending] = service.queue.take_all()
    finally:
        service.close()
    assert pending.channel == "ding" and "InvalidURL" in pending.last_error and "REDACTED" in pending.last_error
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    stored = (tmp_path / "retry.jsonl").read_text()
    assert "attempt 2/2 failed" in logged and "queued for retry" in logged
    for secret in (DING_TOKEN, "SECsign-secret-0123456789"):
        assert secret not in logged and secret not in pending.last_error and secret not in stored


def test_redact_covers_urls_parameters_bearer_tokens_and_tracebacks():
    import logging

    from sinks.notify.escape import RedactingFilter, redact, url_secrets

    feishu = "https://open.feishu.invalid/open-apis/bot/v2/hook/0f3c9a1e-5b7d-4c2a-9e8f-1234567890ab"
    line = (f"POST {feishu} failed; retry https://oapi.dingtalk.invalid/robot/send?access_token={DING_TOKEN}&sign=abc%2B "
            f"header Authorization: Bearer sEcReT-bearer-0123 and /send?key=wecom-key-0123456789")
    out = redact(line, url_secrets(feishu))
    for secret in ("0f3c9a1e-5b7d", DING_TOKEN, "abc%2B", "sEcReT-bearer-0123", "wecom-key-0123456789"):
        assert secret not in out, secret
    assert "https://oapi.dingtalk.invalid/REDACTED" in out and "Bearer REDACTED" in out
    try:
        raise ValueError(f"boom at {feishu}")
    except ValueError:
        import sys
        record = logging.LogRecord("yuqing.notify", logging.ERROR, __file__, 1, "sending to %s failed", (feishu,),
                                   sys.exc_info())
    assert RedactingFilter(url_secrets(feishu)).filter(record)
    rendered = logging.Formatter().format(record)
    assert "0f3c9a1e" not in rendered and "Traceback" in rendered and "REDACTED" in rendered


def test_each_channel_payload_uses_its_own_escaping():
    from sinks.notify.notice import Example

    hostile = Notice(path="kafka", route="critical", status="firing", alertname="YuqingRiskEvent", brand="快送",
                     category="privacy", level="high",
                     examples=(Example('<at user_id="all">所有人</at> <!channel> [退款](http://x.example)',
                                       "weibo", "甲", "https://weibo.example/1", "weibo:1"),))
    bodies = {k: build_request(ChannelConfig(k, k, "https://robot.invalid/x"), hostile, NOW).body.decode()
              for k in ("dingtalk", "wecom", "feishu", "slack", "webhook")}
    feishu = json.loads(bodies["feishu"])["content"]["text"]
    assert "<at" not in feishu and "＜at user＿id" not in feishu and "＜at user_id" in feishu
    assert "[原帖](https://weibo.example/1)" in json.loads(bodies["dingtalk"])["markdown"]["text"]
    assert "[退款]" not in json.loads(bodies["wecom"])["markdown"]["content"]
    slack = json.loads(bodies["slack"])
    assert "&lt;!channel&gt;" in slack["text"] and slack["link_names"] is False and slack["unfurl_links"] is False
    generic = json.loads(bodies["webhook"])
    assert "<at" not in generic["text"] and "<at" not in generic["markdown"]
    assert generic["notice"]["examples"][0]["text"].startswith("<at")  # raw data for machines, documented
