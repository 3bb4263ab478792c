"""The notify HTTP server without Kafka: webhook intake, errors, metrics, the CLI."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from sinks.metrics import Metrics
from sinks.notify.config import ChannelConfig, KafkaConfig, NotifyConfig, RetryConfig
from sinks.notify.service import NotifyServer
from tests.sinks.notify.conftest import DINGTALK_SECRET

REPO_CONFIG = "deploy/alertmanager/notify.example.yaml"
TOKEN = "test-token-快送-not-ascii".encode().hex()  # 32+ printable ASCII characters


@pytest.fixture
def server(robot):
    cfg = NotifyConfig(channels=(ChannelConfig("d", "dingtalk", robot.url("dingtalk"), DINGTALK_SECRET,
                                               routes=("critical", "ops")),),
                       retry=RetryConfig(attempts=1, backoff_s=0.01, retry_every_s=3600),
                       kafka=KafkaConfig(enabled=False), token=TOKEN)
    s = NotifyServer(cfg, Metrics(CollectorRegistry()), port=0).start()
    yield s
    s.close()


def post(server, path, body: bytes, token: str | None = TOKEN, headers: dict | None = None):
    head = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=body, method="POST",
                                 headers=head | (headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def alert(alertname="YuqingHighRisk", **labels):
    return {"status": "firing", "labels": {"alertname": alertname, "severity": "critical", "level": "high",
                                           "brand": "快送", "category": "privacy"} | labels, "annotations": {}}


def test_webhook_pages_once_and_routes_by_path(server, robot):
    body = json.dumps({"version": "4", "alerts": [alert()]}).encode()
    assert post(server, "/alertmanager/critical", body) == (200, {"sent": 1, "deduplicated": 0})
    assert post(server, "/alertmanager/critical", body) == (200, {"sent": 0, "deduplicated": 1})
    # warning is not one of the channel's routes: accepted, but nothing is delivered.
    warn = json.dumps({"alerts": [alert("YuqingMediumRiskSustained", level="medium", severity="warning")]}).encode()
    assert post(server, "/alertmanager/warning", warn)[1]["sent"] == 1
    server.service.wait_idle(5)
    assert len(robot.messages("dingtalk")) == 1
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=3).read().decode()
    assert 'yuqing_notify_sent_total{channel="d"} 1.0' in metrics
    assert 'yuqing_notify_deduplicated_total{path="alertmanager"} 1.0' in metrics


def test_bad_requests_get_clear_errors(server):
    assert post(server, "/alertmanager/critical", b"{not json")[0] == 400
    assert post(server, "/alertmanager/critical", b'{"alerts": 3}')[1]["error"].startswith("alertmanager webhook")
    assert post(server, "/alertmanager/nope", b"{}")[0] == 404
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=3).read())
    assert health == {"ok": True, "kafka": "disabled", "retry_queue": 0}


def test_failed_delivery_is_queued_then_retried(server, robot):
    robot.fail_next = 1
    body = json.dumps({"alerts": [alert(brand="慢送")]}).encode()
    assert post(server, "/alertmanager/critical", body)[1]["sent"] == 1
    server.service.wait_idle(5)
    assert len(server.service.queue) == 1 and not robot.messages("dingtalk")
    assert server.service.retry_pending() == 1
    server.service.wait_idle(5)
    assert len(server.service.queue) == 0 and len(robot.messages("dingtalk", "慢送")) == 1


def test_forged_posts_get_401_and_never_enter_dedup(server, robot):
    body = json.dumps({"alerts": [alert()]}).encode()
    for token, extra in ((None, {}), ("wrong-token-of-enough-length", {}), (TOKEN[:-1], {}),
                         (None, {"Authorization": f"Basic {TOKEN}"}), (None, {"Authorization": TOKEN}),
                         (None, {"Authorization": f"Bearer {TOKEN} extra"})):
        status, answer = post(server, "/alertmanager/critical", body, token, extra)
        assert status == 401 and "bearer token" in answer["error"], (token, extra, status)
    # refused before routing or parsing: no probing of paths or bodies without the token
    assert post(server, "/alertmanager/nope", b"{not json", None)[0] == 401
    assert len(server.service.dedup) == 0
    assert post(server, "/alertmanager/critical", body) == (200, {"sent": 1, "deduplicated": 0})
    server.service.wait_idle(5)
    assert len(robot.messages("dingtalk", "快送·privacy")) == 1
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=3).read().decode()
    assert 'yuqing_notify_received_total{path="alertmanager-unauthorized"} 7.0' in metrics


def test_without_a_token_every_webhook_post_is_refused(robot):
    cfg = NotifyConfig(channels=(ChannelConfig("d", "dingtalk", robot.url("dingtalk"), DINGTALK_SECRET),),
                       kafka=KafkaConfig(enabled=False))
    s = NotifyServer(cfg, Metrics(CollectorRegistry()), port=0).start()
    try:
        assert post(s, "/alertmanager/critical", json.dumps({"alerts": [alert()]}).encode(), None)[0] == 401
        assert post(s, "/alertmanager/critical", json.dumps({"alerts": [alert()]}).encode(), "None")[0] == 401
        assert len(s.service.dedup) == 0 and not robot.accepted
    finally:
        s.close()


def test_bad_content_length_is_a_clear_400(server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("POST", "/alertmanager/critical")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", "12abc")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and "Content-Length" in json.loads(resp.read())["error"]
    conn.close()


def test_cli_check_and_errors(tmp_path):
    import os
    env = dict(os.environ, DINGTALK_WEBHOOK_URL="https://d.invalid/send?access_token=t", DINGTALK_SECRET="SECx",
               FEISHU_WEBHOOK_URL="https://f.invalid/h", WECOM_WEBHOOK_URL="https://w.invalid",
               SLACK_WEBHOOK_URL="https://s.invalid", YUQING_NOTIFY_TOKEN=TOKEN)
    from sinks.notify import cli  # the lead wires register() into sinks/cli.py; call it directly here
    import argparse
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["notify", "--check", "--config", REPO_CONFIG])
    old = dict(os.environ)
    os.environ.update(env)
    try:
        assert args.func(args) == 0
        from core.errors import CommandError
        bad = parser.parse_args(["notify", "--check", "--config", "/nonexistent.yaml"])
        with pytest.raises(CommandError, match="does not exist"):
            bad.func(bad)
        # no token configured: the local stack's token file is created 0600 and used
        del os.environ["YUQING_NOTIFY_TOKEN"]
        os.environ["YUQING_STATE_DIR"] = str(tmp_path / "state")
        assert args.func(args) == 0
        made = tmp_path / "state" / "secrets" / "notify-token"
        assert made.stat().st_mode & 0o777 == 0o600 and len(made.read_text().strip()) >= 32
        with pytest.raises(CommandError, match="cannot read the notify token file"):
            args.func(parser.parse_args(["notify", "--check", "--config", REPO_CONFIG, "--token-file",
                                         str(tmp_path / "missing")]))
        made.chmod(0o644)
        with pytest.raises(CommandError, match="readable by others"):
            args.func(args)
        weak = tmp_path / "weak"
        weak.write_text("short\n")
        weak.chmod(0o600)
        with pytest.raises(CommandError, match="at least 16"):
            args.func(parser.parse_args(["notify", "--check", "--config", REPO_CONFIG, "--token-file", str(weak)]))
    finally:
        os.environ.clear()
        os.environ.update(old)
