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


@pytest.fixture
def server(robot):
    cfg = NotifyConfig(channels=(ChannelConfig("d", "dingtalk", robot.url("dingtalk"), DINGTALK_SECRET,
                                               routes=("critical", "ops")),),
                       retry=RetryConfig(attempts=1, backoff_s=0.01, retry_every_s=3600),
                       kafka=KafkaConfig(enabled=False))
    s = NotifyServer(cfg, Metrics(CollectorRegistry()), port=0).start()
    yield s
    s.close()


def post(server, path, body: bytes):
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
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


def test_cli_check_and_errors():
    import os
    env = dict(os.environ, DINGTALK_WEBHOOK_URL="https://d.invalid/send?access_token=t", DINGTALK_SECRET="SECx",
               FEISHU_WEBHOOK_URL="https://f.invalid/h", WECOM_WEBHOOK_URL="https://w.invalid",
               SLACK_WEBHOOK_URL="https://s.invalid")
    from sinks.notify import cli  # the lead wires register() into sinks/cli.py; call it directly here
    import argparse
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["notify", "--check", "--config", REPO_CONFIG])
    old = dict(os.environ)
    os.environ.update(env)
    try:
        assert args.func(args) == 0
        from yuqing.cli import CommandError
        bad = parser.parse_args(["notify", "--check", "--config", "/nonexistent.yaml"])
        with pytest.raises(CommandError, match="does not exist"):
            bad.func(bad)
    finally:
        os.environ.clear()
        os.environ.update(old)
