"""alertmanager.yml: amtool accepts the rendered file and routes alerts where notify expects."""
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
    path.write_text(render_alertmanager_config("http://127.0.0.1:19104"))
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
    (["alertname=YuqingNotifyDeliveryFailing", "severity=critical", "team=ops"], "yuqing-ops-critical"),
    (["alertname=Other"], "yuqing-default"),
])
def test_routes(rendered, labels, receiver):
    result = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={rendered}", *labels],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_every_receiver_is_a_notify_route_and_high_inhibits_medium(rendered):
    cfg = yaml.safe_load(rendered.read_text())
    for receiver in cfg["receivers"]:
        [hook] = receiver["webhook_configs"]
        prefix = "http://127.0.0.1:19104/alertmanager/"
        assert hook["url"].startswith(prefix) and hook["url"].removeprefix(prefix) in ROUTES
    assert cfg["route"]["group_by"] == ["alertname", "brand", "category"]
    critical = next(r for r in cfg["route"]["routes"] if r["receiver"] == "yuqing-critical")
    assert critical["group_wait"] == "1s"
    [inhibit] = cfg["inhibit_rules"]
    assert inhibit["equal"] == ["brand", "category"] and "YuqingHighRisk" in inhibit["source_matchers"][0]
