"""alertmanager.yml: amtool accepts the rendered file and routes alerts where notify expects;
every notify webhook carries the bearer token; the Watchdog and the ops fallback do not
depend on notify."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from sinks.notify.config import ALERTMANAGER_TEMPLATE, ROUTES, render_alertmanager_config

pytestmark = pytest.mark.skipif(not shutil.which("amtool"), reason="amtool missing: apt-get install prometheus-alertmanager")


@pytest.fixture
def rendered(tmp_path):
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_alertmanager_config("http://127.0.0.1:19104", "/state/secrets/notify-token"))
    return path


def test_amtool_check_config(rendered):
    result = subprocess.run(["amtool", "check-config", str(rendered)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_rejects_the_unrendered_template():
    result = subprocess.run(["amtool", "check-config", str(ALERTMANAGER_TEMPLATE)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0


@pytest.mark.parametrize("labels, receiver", [
    (["alertname=YuqingHighRisk", "severity=critical", "team=pr", "brand=快送", "category=privacy"], "yuqing-critical"),
    (["alertname=YuqingMediumRiskSustained", "severity=warning", "team=pr", "brand=快送"], "yuqing-warning"),
    (["alertname=YuqingCrawlerDown", "severity=warning", "team=ops"], "yuqing-ops"),
    # outages that blind paging also go to the Alertmanager-native e-mail receiver
    (["alertname=YuqingNotifyDeliveryFailing", "severity=critical", "team=ops", "channel=d"],
     "ops-fallback,yuqing-ops-critical"),
    (["alertname=YuqingComponentDown", "severity=warning", "team=ops", "job=yuqing-notify"], "ops-fallback,yuqing-ops"),
    (["alertname=YuqingScoringStalled", "severity=critical", "team=ops"], "ops-fallback,yuqing-ops-critical"),
    (["alertname=YuqingWatchdog", "severity=none", "team=ops"], "deadmans-switch"),
    (["alertname=Other"], "yuqing-default"),
])
def test_routes(rendered, labels, receiver):
    result = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={rendered}", *labels],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_every_notify_receiver_sends_the_token_and_high_inhibits_medium(rendered):
    cfg = yaml.safe_load(rendered.read_text())
    notify = [r for r in cfg["receivers"] if r["name"].startswith("yuqing-")]
    assert {r["name"] for r in notify} == {f"yuqing-{route}" for route in ROUTES}
    for receiver in notify:
        [hook] = receiver["webhook_configs"]
        prefix = "http://127.0.0.1:19104/alertmanager/"
        assert hook["url"].startswith(prefix) and hook["url"].removeprefix(prefix) in ROUTES
        assert hook["http_config"]["authorization"] == {"type": "Bearer",
                                                        "credentials_file": "/state/secrets/notify-token"}
    others = {r["name"]: r for r in cfg["receivers"] if not r["name"].startswith("yuqing-")}
    assert set(others) == {"deadmans-switch", "ops-fallback"}
    assert "webhook_configs" not in others["ops-fallback"] and others["ops-fallback"]["email_configs"]
    fallback = next(r for r in cfg["route"]["routes"] if r["receiver"] == "ops-fallback")
    assert fallback["continue"] is True
    watchdog = cfg["route"]["routes"][0]
    assert watchdog["receiver"] == "deadmans-switch" and not watchdog.get("continue")
    assert watchdog["repeat_interval"] == "1m"
    assert cfg["route"]["group_by"] == ["alertname", "brand"]  # a brand's story is one group (incidents)
    critical = next(r for r in cfg["route"]["routes"] if r["receiver"] == "yuqing-critical")
    assert critical["group_wait"] == "1s"
    [inhibit] = cfg["inhibit_rules"]
    assert inhibit["equal"] == ["brand"] and "YuqingHighRisk" in inhibit["source_matchers"][0]


def test_the_token_itself_never_enters_a_rendered_config(tmp_path):
    from sinks.notify.config import ensure_token_file

    token_file = ensure_token_file(tmp_path / "secrets" / "notify-token")
    text = render_alertmanager_config("http://127.0.0.1:19104", token_file)
    assert token_file.read_text().strip() not in text and f"credentials_file: {token_file}" in text


def test_the_local_stack_writes_a_0600_token_and_points_alertmanager_at_it(tmp_path):
    from dataclasses import replace

    from sinks.notify.config import parse_notify_config, read_token_file, resolve_token
    from core.config import Settings
    from yuqing.stack.components import render_alertmanager

    settings = replace(Settings(), state_dir=tmp_path / "state")
    text = render_alertmanager(settings)
    token_file = tmp_path / "state" / "secrets" / "notify-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = read_token_file(token_file)
    assert f"credentials_file: {token_file}" in text and token not in text
    assert render_alertmanager(settings) == text and read_token_file(token_file) == token  # stable across runs
    # `yuqing notify` on the same state folder finds the same token with nothing configured
    assert resolve_token(parse_notify_config({}, env={}), env={}, state_dir=settings.state_dir) == token
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
